"""As-of alignment of option-chain snapshots to spot bars (SPEC section 2).

Each bar at ``t`` (close label, New York time) takes the latest chain snapshot ``s <= t`` of
the same session day; ``lag = t - s`` in seconds.  Modes per bar:

* ``exact`` -- a snapshot stamped exactly at the bar (lag 0);
* ``prior`` -- an earlier snapshot of the same day with ``0 < lag <= limit``;
* ``stale`` -- the latest same-day snapshot is older than the limit (``lag > limit``);
* ``none``  -- no snapshot of that day at or before the bar (or the day has no options data).

Quote confidence ``iv_conf = 0.5 ** (lag_seconds / 300)`` (half-life 5 minutes; 1 for exact,
0 for ``none``).  Lag limits: 600 s for SPY and QQQ, 900 s for SPX/SPXW, 600 s otherwise.
Only days present in both the spot and the options data are judged (the others are listed in
the diagnostics); on those days, when more than 20% of bars are ``stale`` or ``none`` the
alignment aborts with a one-line :class:`core.dto.DataError` saying what to do.

>>> round(float(iv_confidence(np.array([300.0]))[0]), 3)
0.5
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, unique

import numpy as np
import pandas as pd

from core.dto import DataError
from data_factory.base import DEFAULTS

NY_TZ = "America/New_York"
IV_CONF_HALF_LIFE_S = 300.0
DEFAULT_LAG_LIMIT_S = 600
LAG_LIMITS_S = {"SPY": 600, "QQQ": 600, "SPX": 900, "SPXW": 900}


@unique
class AlignMode(Enum):
    EXACT = "exact"
    PRIOR = "prior"
    STALE = "stale"
    NONE = "none"


MODE_CODES = (AlignMode.EXACT, AlignMode.PRIOR, AlignMode.STALE, AlignMode.NONE)  # position = int code


def lag_limit_seconds(underlying: str) -> int:
    """Maximum quote lag (seconds) before a bar's chain counts as stale."""
    return LAG_LIMITS_S.get(underlying.upper(), DEFAULT_LAG_LIMIT_S)


def iv_confidence(lag_seconds: np.ndarray) -> np.ndarray:
    """``0.5 ** (lag / 300)``; NaN lags (no snapshot) give 0."""
    lag = np.asarray(lag_seconds, dtype=float)
    return np.where(np.isfinite(lag), 0.5 ** (np.where(np.isfinite(lag), lag, 0.0) / IV_CONF_HALF_LIFE_S), 0.0)


@dataclass(frozen=True, slots=True)
class AlignmentDiagnostics:
    """Summary of an alignment over the bars of the days present in both data sets."""

    bars: int  # bars on common days
    exact_pct: float
    prior_pct: float
    stale_pct: float
    none_pct: float
    lag_p50_s: float
    lag_p90_s: float
    lag_max_s: float
    iv_conf_mean: float
    iv_conf_p10: float
    iv_conf_min: float
    common_days: int
    spot_only_days: tuple[str, ...]
    options_only_days: tuple[str, ...]
    lag_limit_s: float

    def summary(self) -> str:
        return (f"{self.bars} bars on {self.common_days} common days: exact {self.exact_pct:.1f}%, "
                f"prior {self.prior_pct:.1f}%, stale {self.stale_pct:.1f}%, none {self.none_pct:.1f}%; "
                f"lag p50 {self.lag_p50_s:.0f}s p90 {self.lag_p90_s:.0f}s max {self.lag_max_s:.0f}s "
                f"(limit {self.lag_limit_s:.0f}s); iv_conf mean {self.iv_conf_mean:.3f} min {self.iv_conf_min:.3f}; "
                f"days only in spot {len(self.spot_only_days)}, only in options {len(self.options_only_days)}")


@dataclass(frozen=True, slots=True, eq=False)
class Alignment:
    """Per-bar result: snapshot index (-1 = none), lag seconds (NaN = none), mode code, iv_conf."""

    bar_ts: pd.DatetimeIndex
    snap_index: np.ndarray
    lag_seconds: np.ndarray
    mode_code: np.ndarray  # index into MODE_CODES
    iv_conf: np.ndarray
    on_common_day: np.ndarray
    diagnostics: AlignmentDiagnostics

    def modes(self) -> np.ndarray:
        """Mode names per bar (``exact``, ``prior``, ``stale``, ``none``)."""
        return np.array([m.value for m in MODE_CODES])[self.mode_code]


def to_ny(ts: pd.DatetimeIndex | pd.Series) -> pd.DatetimeIndex:
    """Timestamps as tz-aware New York time (naive input is taken as New York local)."""
    idx = pd.DatetimeIndex(ts)
    return idx.tz_localize(NY_TZ) if idx.tz is None else idx.tz_convert(NY_TZ)


def _day_numbers(idx: pd.DatetimeIndex) -> np.ndarray:
    return idx.tz_localize(None).normalize().to_numpy(dtype="datetime64[D]").astype(np.int64)


def classify(bar_ts: pd.DatetimeIndex, snap_ts: pd.DatetimeIndex, lag_limit_s: float
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As-of lookup: ``(snap_index, lag_seconds, mode_code)`` per bar; ``snap_ts`` sorted ascending.

    ``snap_index`` is the latest snapshot at or before the bar on any day (-1 when there is none),
    so mark-to-market can still fall back on it; ``lag``/``mode`` only count same-day snapshots.
    """
    bars, snaps = to_ny(bar_ts), to_ny(snap_ts)
    b_ns = bars.as_unit("ns").asi8
    s_ns = snaps.as_unit("ns").asi8
    if len(s_ns) == 0:
        return np.full(len(b_ns), -1), np.full(len(b_ns), np.nan), np.full(len(b_ns), 3)
    idx = np.searchsorted(s_ns, b_ns, side="right") - 1
    safe = np.maximum(idx, 0)
    same_day = (idx >= 0) & (_day_numbers(snaps)[safe] == _day_numbers(bars))
    lag = np.where(same_day, (b_ns - s_ns[safe]) / 1e9, np.nan)
    code = np.select([~same_day, lag == 0, lag <= lag_limit_s], [3, 0, 1], default=2)
    return idx, lag, code


def align_chains(bar_ts: pd.DatetimeIndex, snap_ts: pd.DatetimeIndex,
                 underlying: str = DEFAULTS.strategy.underlying, *, max_lag_seconds: float | None = None,
                 max_stale_fraction: float = DEFAULTS.data.chain_max_stale_fraction,
                 source: str = "options data") -> Alignment:
    """Align snapshots to bars, judge the days present in both, abort when too many bars are stale."""
    limit = float(lag_limit_seconds(underlying) if max_lag_seconds is None else max_lag_seconds)
    bars, snaps = to_ny(bar_ts), to_ny(snap_ts)
    idx, lag, code = classify(bars, snaps, limit)
    bar_days, snap_days = _day_numbers(bars), np.unique(_day_numbers(snaps))
    common = np.intersect1d(np.unique(bar_days), snap_days)
    on_common = np.isin(bar_days, common)
    if not on_common.any():
        raise DataError(f"{source}: no day is present in both the spot bars and the option chains; "
                        "choose a date range covered by both files")
    conf = iv_confidence(lag)
    diag = _diagnostics(code[on_common], lag[on_common], conf[on_common], limit, common, bar_days, snap_days)
    bad_fraction = (diag.stale_pct + diag.none_pct) / 100.0
    if bad_fraction > max_stale_fraction:
        raise DataError(
            f"{source}: {bad_fraction:.0%} of {diag.bars} bars have no chain snapshot within {limit:.0f}s "
            f"(stale {diag.stale_pct:.1f}%, none {diag.none_pct:.1f}%, limit {max_stale_fraction:.0%}); "
            f"supply snapshots at least every {limit:.0f}s, raise the limit with --chain-max-lag SECONDS "
            "(config data.chain_max_lag_seconds) or the share with --chain-max-stale FRACTION "
            "(data.chain_max_stale_fraction), or use daily bars with end-of-day chains")
    return Alignment(bars, idx, lag, code, conf, on_common, diag)


def _day_labels(days: np.ndarray) -> tuple[str, ...]:
    return tuple(str(d) for d in days.astype("datetime64[D]"))


def _diagnostics(code: np.ndarray, lag: np.ndarray, conf: np.ndarray, limit: float, common: np.ndarray,
                 bar_days: np.ndarray, snap_days: np.ndarray) -> AlignmentDiagnostics:
    n = len(code)
    pct = [100.0 * float(np.mean(code == k)) if n else 0.0 for k in range(4)]
    seen = lag[np.isfinite(lag)]
    q50, q90, qmax = (np.percentile(seen, [50, 90, 100]) if seen.size else (np.nan, np.nan, np.nan))
    return AlignmentDiagnostics(
        bars=n, exact_pct=pct[0], prior_pct=pct[1], stale_pct=pct[2], none_pct=pct[3],
        lag_p50_s=float(q50), lag_p90_s=float(q90), lag_max_s=float(qmax),
        iv_conf_mean=float(conf.mean()) if n else 0.0,
        iv_conf_p10=float(np.percentile(conf, 10)) if n else 0.0,
        iv_conf_min=float(conf.min()) if n else 0.0,
        common_days=len(common),
        spot_only_days=_day_labels(np.setdiff1d(np.unique(bar_days), common)),
        options_only_days=_day_labels(np.setdiff1d(snap_days, common)),
        lag_limit_s=limit,
    )
