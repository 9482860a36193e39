"""Stale daily opens: detect the opens a data vendor did not really observe, and model them.

In the embedded S&P 500 file (``arch.data.sp500``) the daily *open* is unusable on many days:

* 1999–2005 (and again in stretches of 2006–2007 and 2011–2013) the open **equals the previous
  close** on 95–98% of days: the vendor wrote yesterday's close as today's open;
* through 2016 the open **equals the day's high or low** on about 30% of days (the vendor's
  high/low were stretched to include a stale open), against 8–11% in 2017–2018, where the
  opens are genuine (an index can open at its high or low: a gap that then runs one way).

Detection rule (``detect_stale_opens``), first row never flagged (it has no previous close):

1. **open = previous close**: ``|open − prev_close| <= tol · prev_close`` (``tol`` = 1e-6, far
   below the 0.01 index-point grid).  A genuine open exactly at the previous close is too rare
   to matter (0–0.4% of days in 2014–2018).
2. **a pinned era**: the share of open-at-the-high-or-low days over the trailing
   ``era_window`` = 126 sessions (about six months) *ending the session before* is at least
   ``pinned_rate`` = 0.20 (needs 20 sessions; before that no era is declared).  Inside such an
   era every open is flagged, whether or not it ends at the day's extreme: the day's own high
   and low are known only at the close, and the flag acts from 09:30 (it switches the gap
   gate off), so it must not read them.  A single open at the high cannot be told from a
   genuine one; the era can: genuine opens put 8–11% of days at an extreme (2017–2018 in this
   file), vendor-stretched ones 27–46% per quarter (1999–2016), and inside such an era no open
   carries a trustworthy gap.  The flag at day D reads the vendor's open of D (known at
   09:30) and rows before D only.

Model (``model_stale_opens``): the flagged open is replaced by a modelled overnight gap

    open_D = prev_close_D · exp(g),  g ~ N(0, s_D²) truncated to [ln(low_D/prev_close_D), ln(high_D/prev_close_D)]
    s_D = sqrt(phi) · sd(last 20 close-to-close log returns up to D−1)   (at least 2 returns)

* ``phi`` = 0.25 is the share of close-to-close variance that falls overnight.  It is fixed in
  advance, not fitted on this file: the S&P 500 futures study in the SEC staff's appendix
  "Open-to-Close vs. Overnight Volatility" (exhibits to the Financial Crisis Inquiry
  Commission, SEC_OEA_FCIC_001760) puts the open-to-close share at 60–70% of daily variance in
  1986–2008 (overnight 30–40% for futures, which move while the cash index is shut); the cash
  index opens on partly stale prices, so a share a little lower is used.  As a check, not a fit:
  the genuine opens of 2017 and 2018 in this file give 0.26 and 0.16.
* Truncating to the day's own range is the only use of day D's prices: the modelled open keeps
  ``0 < low <= open <= high`` without a point mass at the high or low (clipping would recreate
  the very artefact being removed).  Day D's close is never read (``high``/``low`` only), and no
  later row is read at all.
* The uniform behind each draw comes from ``numpy.random.default_rng([seed, ordinal(D), salt])``:
  the same (seed, date) gives the same open whatever the frame's extent.

``open_modelled`` (bool) marks the replaced rows.  Gap features and gates read it and switch
off on those rows (``intelligence.pipeline``).  ``stale_open_counts`` summarises per rule.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import truncnorm

TOLERANCE = 1e-6
ERA_WINDOW = 126
ERA_MIN_SESSIONS = 20
PINNED_RATE = 0.20
OVERNIGHT_VARIANCE_SHARE = 0.25
SCALE_WINDOW = 20
_SALT = 0x57A1E  # separates these draws from every other seeded stream of the project


def _near(a: np.ndarray, b: np.ndarray, tol: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.abs(a - b) <= tol * np.abs(b)


def _columns(daily: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    missing = [c for c in ("open", "high", "low", "close") if c not in daily.columns]
    if missing:
        raise ValueError(f"daily bars lack column(s) {', '.join(missing)}; give open, high, low, close")
    return tuple(daily[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close"))


def _rules(daily: pd.DataFrame, tol: float = TOLERANCE, era_window: int = ERA_WINDOW,
           pinned_rate: float = PINNED_RATE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(open = previous close, open at an extreme, pinned era) per row; all causal."""
    o, h, lo, c = _columns(daily)
    prev = np.r_[np.nan, c[:-1]]
    at_prev = _near(o, prev, tol)
    at_extreme = _near(o, h, tol) | _near(o, lo, tol)
    rate = pd.Series(at_extreme.astype(float)).rolling(era_window, min_periods=ERA_MIN_SESSIONS).mean()
    era = (rate >= pinned_rate).shift(1, fill_value=False).to_numpy(dtype=bool)  # decided from rows < D
    return at_prev, at_extreme, era


def detect_stale_opens(daily: pd.DataFrame, tol: float = TOLERANCE, era_window: int = ERA_WINDOW,
                       pinned_rate: float = PINNED_RATE) -> np.ndarray:
    """Bool per row: the open is unusable (= previous close, or vendor-pinned to the high/low).

    See the module docstring for the rule; the flag at row D reads rows ``<= D`` only.
    """
    at_prev, _at_extreme, era = _rules(daily, tol, era_window, pinned_rate)
    return np.asarray(at_prev | era, dtype=bool)


def stale_open_counts(daily: pd.DataFrame) -> dict[str, int]:
    """How many rows each rule flags, for ``data describe``.

    On a vendor frame (no ``open_modelled`` column): ``days``, ``open_eq_prev_close``,
    ``open_pinned_high_low`` (inside a pinned era and not already open = previous close),
    ``flagged`` (either rule).  On a frame from ``model_stale_opens`` the opens are no longer the
    vendor's, so only ``days`` and ``modelled`` (rows with ``open_modelled``) are reported.
    """
    if "open_modelled" in daily.columns:
        return {"days": len(daily), "modelled": int(np.asarray(daily["open_modelled"], dtype=bool).sum())}
    at_prev, _at_extreme, era = _rules(daily)
    return {"days": len(daily), "open_eq_prev_close": int(at_prev.sum()),
            "open_pinned_high_low": int((era & ~at_prev).sum()), "flagged": int((at_prev | era).sum())}


def describe_line(daily: pd.DataFrame) -> str:
    """One ``data describe`` line about the stale opens of a daily frame (vendor or modelled)."""
    n = stale_open_counts(daily)
    days = n["days"]
    if "modelled" in n:
        return (f"stale opens: {n['modelled']} of {days} days have a modelled open "
                f"({n['modelled'] / max(days, 1):.1%}); gap features and the gap gate are off on those days")
    return (f"stale opens: {n['flagged']} of {days} days ({n['flagged'] / max(days, 1):.1%}): "
            f"{n['open_eq_prev_close']} open = previous close, {n['open_pinned_high_low']} more in a pinned-open era")


def _gap_scale(close: np.ndarray, phi: float, window: int) -> np.ndarray:
    """s_D from close-to-close log returns up to D−1 (NaN where fewer than 2 are known)."""
    r = np.r_[np.nan, np.diff(np.log(close))]
    sd = pd.Series(r).rolling(window, min_periods=2).std(ddof=1).to_numpy()
    return np.sqrt(phi) * np.r_[np.nan, sd[:-1]]  # shift: the window ends at the close of D−1


def _uniform(seed: int, day: pd.Timestamp) -> float:
    return float(np.random.default_rng([int(seed) & 0xFFFFFFFF, day.toordinal(), _SALT]).random())


def model_stale_opens(daily: pd.DataFrame, seed: int, phi: float = OVERNIGHT_VARIANCE_SHARE,
                      scale_window: int = SCALE_WINDOW) -> pd.DataFrame:
    """``daily`` with unusable opens replaced by a modelled overnight gap and column ``open_modelled``.

    Rows whose open is flagged but which lack a usable scale (fewer than 2 earlier returns) or a
    valid range keep their open, unflagged.  Other columns are returned unchanged.
    """
    if not 0.0 < phi <= 1.0:
        raise ValueError(f"phi={phi} is invalid; the overnight variance share lies in (0, 1]")
    out = daily.copy()
    o, h, lo, c = _columns(daily)
    prev = np.r_[np.nan, c[:-1]]
    scale = _gap_scale(c, phi, scale_window)
    with np.errstate(invalid="ignore"):
        usable = np.isfinite(prev) & (prev > 0) & np.isfinite(scale) & (scale > 0) & (lo > 0) & (h >= lo)
    flagged = detect_stale_opens(daily) & usable
    new_open = o.copy()
    rows = np.flatnonzero(flagged)
    if len(rows):
        index = pd.DatetimeIndex(daily.index)
        u = np.array([_uniform(seed, index[i]) for i in rows])
        a = np.log(lo[rows] / prev[rows]) / scale[rows]
        b = np.log(h[rows] / prev[rows]) / scale[rows]
        wide = b > a
        z = np.zeros(len(rows))
        z[wide] = truncnorm.ppf(u[wide], a[wide], b[wide])
        z[~wide] = a[~wide]  # a one-price day (high = low): the open is that price
        new_open[rows] = np.clip(prev[rows] * np.exp(z * scale[rows]), lo[rows], h[rows])
    out["open"] = new_open
    out["open_modelled"] = flagged
    return out
