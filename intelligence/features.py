"""Every per-bar feature of the decision core, computed once, vectorised and causally.

``compute_features`` turns five-minute bars (+ daily bars, daily VIX, optional one-minute
bars) into a ``FeatureFrame``: numpy arrays aligned to ``bars_5m.index``.  The value at bar
``t`` uses only data up to ``t``: intraday indicators run on bars ``<= t``; daily inputs
(VIX, IV rank, daily ADX / SMAs, daily RV, σ*) come from the **previous completed session**
(the last daily row dated before ``t``'s session), because a daily close is not known
intraday; higher timeframes are seen through closed bars only (``intelligence.mtf``).
tests/test_features_causal.py checks ``features(bars[:t+1])[t] == features(bars)[t]``.

Columns (``FEATURE_COLUMNS``):

* 5-min indicators: ``close, rsi, adx, plus_di, minus_di, atr, sma20, sma_distance,
  bb_middle, bb_upper, bb_lower, bb_position, bb_width, stoch_k, stoch_d, psar, psar_p,
  volume_ratio, rv`` (``rv``: RV of the last ``rv_window_bars`` returns, annualised with
  ``bars_per_day``; default one day of 78 bars).
* previous session: ``prev_close, day_return`` (close/prev_close − 1), ``d_adx, d_sma_fast,
  d_sma_slow`` (daily ADX14, SMA20, SMA50), ``rv_daily`` (20-day close-to-close RV),
  ``sigma_star`` (percentile of ``rv_daily`` in its trailing 252 sessions, [0, 1]),
  ``vix, vix_change`` (relative change on the session before), ``iv_rank, iv_percentile``
  (of VIX over 252 sessions), ``iv_atm`` (given per bar, else VIX/100), ``vrp`` (iv_atm −
  rv_daily), ``vrp_ok`` (vrp > 0.02).
* ``regime`` (int code, see ``intelligence.regime``; from d_adx, close vs d_sma_fast vs
  d_sma_slow, vix, iv_rank, vix_change, day_return), ``crash_trigger`` (bitmask of the
  CRASH_MODE rules that fire, ``intelligence.regime.crash_triggers``; 0 for none),
  ``time_in_regime`` (bars).
* ``mtf_consensus, mtf_available, mtf_signal_<m>`` per timeframe; reasons in ``mtf_reasons``.
* ``mu_<factor>`` for the ten fuzzy factors and ``fuzzy_confidence`` (F_t).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from analytics import indicators as ind
from analytics import volatility as vol
from core.config import FilterConfig, IndicatorConfig, MTFConfig
from core.dto import DataError, Regime
from intelligence import fuzzy, mtf, regime
from intelligence.fuzzy import FuzzyParams
from intelligence.mtf import MTFParams
from intelligence.regime import RegimeThresholds

BASE_MINUTES = 5


@dataclass(frozen=True, slots=True)
class FeatureParams:
    """Periods and windows (defaults = SPEC §3–4; run-config options default to ``core.config``)."""

    rsi_period: int = 14
    adx_period: int = 14
    atr_period: int = 14
    bb_period: int = 20
    bb_nbdev: float = 2.0
    stoch_k: int = 14
    stoch_d: int = 3
    psar_acceleration: float = IndicatorConfig().psar_acceleration
    psar_maximum: float = IndicatorConfig().psar_max_acceleration
    sma_period: int = 20
    volume_period: int = 20
    bars_per_day: int = vol.FIVE_MINUTE_BARS_PER_DAY
    rv_window_bars: int = vol.FIVE_MINUTE_BARS_PER_DAY
    daily_rv_days: int = 20
    iv_window: int = vol.TRADING_DAYS
    iv_min_periods: int = 63  # a quarter of history before IV rank / σ* are reported
    regime_sma_fast: int = 20
    regime_sma_slow: int = 50
    vrp_min: float = FilterConfig().vrp_min
    mtf_require_all: bool = True
    mtf_params: MTFParams = field(default_factory=MTFParams)
    regime_thresholds: RegimeThresholds = field(default_factory=RegimeThresholds)
    fuzzy_params: FuzzyParams = field(default_factory=FuzzyParams)


@dataclass(frozen=True, slots=True, eq=False)
class FeatureFrame:
    """Read-only feature arrays aligned to ``index`` (the five-minute bar labels)."""

    index: pd.DatetimeIndex
    columns: Mapping[str, np.ndarray]  # read-only view; every array is write-protected
    mtf_reasons: np.ndarray
    weights: dict[str, float]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    def regime_at(self, i: int) -> Regime | None:
        return regime.regime_of(int(self.columns["regime"][i]))

    def row(self, i: int) -> dict[str, object]:
        """Every column at bar i as Python scalars, plus ``ts``, ``regime_name`` and ``mtf_reason``."""
        out: dict[str, object] = {"ts": self.index[i]}
        for name, arr in self.columns.items():
            out[name] = arr[i].item()
        r = self.regime_at(i)
        out["regime_name"] = r.value if r is not None else "UNKNOWN"
        out["mtf_reason"] = str(self.mtf_reasons[i])
        return out

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(dict(self.columns), index=self.index).assign(mtf_reason=self.mtf_reasons)


def _ohlcv(bars: pd.DataFrame) -> tuple[np.ndarray, ...]:
    try:
        return tuple(bars[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close", "volume"))
    except KeyError as exc:
        raise DataError(f"bars lack column {exc}; expected open, high, low, close, volume") from exc


def _intraday(bars: pd.DataFrame, p: FeatureParams) -> dict[str, np.ndarray]:
    _, h, lo, c, v = _ohlcv(bars)
    dmi = ind.adx(h, lo, c, p.adx_period)
    bb = ind.bollinger(c, p.bb_period, p.bb_nbdev)
    st = ind.stochastic(h, lo, c, p.stoch_k, p.stoch_d)
    atr = ind.atr(h, lo, c, p.atr_period)
    sar = ind.parabolic_sar(h, lo, p.psar_acceleration, p.psar_maximum)
    return {
        "close": c.copy(), "rsi": ind.rsi(c, p.rsi_period), "adx": dmi.adx, "plus_di": dmi.plus_di,
        "minus_di": dmi.minus_di, "atr": atr, "sma20": ind.sma(c, p.sma_period),
        "sma_distance": ind.sma_distance(c, p.sma_period), "bb_middle": bb.middle, "bb_upper": bb.upper,
        "bb_lower": bb.lower, "bb_position": bb.position, "bb_width": bb.width, "stoch_k": st.k,
        "stoch_d": st.d, "psar": sar, "psar_p": ind.psar_position(c, sar, atr),
        "volume_ratio": ind.volume_ratio(v, p.volume_period),
        "rv": vol.realized_vol(c, p.rv_window_bars, p.bars_per_day),
    }


def _prev_session_pos(dates: pd.Index, bar_days: np.ndarray) -> np.ndarray:
    """Position of the last daily row dated strictly before each bar's session date (−1 if none)."""
    idx = pd.DatetimeIndex(dates)
    d = (idx.tz_localize(None) if idx.tz is not None else idx).normalize().as_unit("ns").asi8
    if len(d) > 1 and np.any(np.diff(d) <= 0):
        raise DataError("daily rows are not sorted by unique date; sort and de-duplicate the daily bars")
    return np.searchsorted(d, bar_days, side="left") - 1


def _take(values: np.ndarray, pos: np.ndarray) -> np.ndarray:
    out = np.full(len(pos), np.nan)
    ok = pos >= 0
    out[ok] = values[pos[ok]]
    return out


def _daily(daily: pd.DataFrame, vix: pd.DataFrame, bar_days: np.ndarray, p: FeatureParams) -> dict[str, np.ndarray]:
    _, h, lo, c, _ = _ohlcv(daily)
    rv_d = vol.realized_vol(c, p.daily_rv_days, 1.0)
    mp = min(p.iv_min_periods, p.iv_window)
    series = {
        "prev_close": c, "d_adx": ind.adx(h, lo, c, p.adx_period).adx,
        "d_sma_fast": ind.sma(c, p.regime_sma_fast), "d_sma_slow": ind.sma(c, p.regime_sma_slow),
        "rv_daily": rv_d, "sigma_star": vol.sigma_star(rv_d, p.iv_window, mp),
    }
    pos = _prev_session_pos(daily.index, bar_days)
    out = {k: _take(v, pos) for k, v in series.items()}
    if "vix" not in vix.columns:
        raise DataError("the VIX frame lacks its 'vix' column; pass a frame indexed by date with column vix")
    vx = vix["vix"].to_numpy(dtype=np.float64)
    vix_series = {
        "vix": vx, "vix_change": np.r_[np.nan, vx[1:] / vx[:-1] - 1.0],
        "iv_rank": vol.iv_rank(vx, p.iv_window, mp), "iv_percentile": vol.iv_percentile(vx, p.iv_window, mp),
    }
    vpos = _prev_session_pos(vix.index, bar_days)
    out.update({k: _take(v, vpos) for k, v in vix_series.items()})
    return out


def _timeframe_frames(
    bars_5m: pd.DataFrame, bars_1m: pd.DataFrame | None, timeframes: Sequence[int],
    bars_by_tf: Mapping[int, pd.DataFrame] | None,
) -> dict[int, pd.DataFrame | None]:
    """Frames per MTF timeframe: given ones first, then 5m itself, 1m, or a resample of 5m / 1m."""
    given = dict(bars_by_tf or {})
    frames: dict[int, pd.DataFrame | None] = {}
    for m in timeframes:
        if m in given:
            frames[m] = given[m]
        elif m == BASE_MINUTES:
            frames[m] = bars_5m
        elif m == 1:
            frames[m] = bars_1m
        elif m % BASE_MINUTES == 0:
            frames[m] = mtf.resample_close_labelled(bars_5m, m)
        else:
            frames[m] = None if bars_1m is None else mtf.resample_close_labelled(bars_1m, m)
    return frames


def _regime(cols: dict[str, np.ndarray], p: FeatureParams) -> None:
    triggers = regime.crash_triggers(cols["close"], cols["d_sma_fast"], cols["d_sma_slow"], cols["vix"],
                                     vix_change=cols["vix_change"], day_return=cols["day_return"],
                                     thresholds=p.regime_thresholds)
    codes = regime.classify_regime(
        cols["close"], cols["d_adx"], cols["d_sma_fast"], cols["d_sma_slow"], cols["vix"],
        iv_rank=cols["iv_rank"], vix_change=cols["vix_change"], day_return=cols["day_return"],
        thresholds=p.regime_thresholds, triggers=triggers,
    )
    cols["crash_trigger"] = triggers.astype(np.float64)
    cols["regime"] = codes
    cols["time_in_regime"] = regime.time_in_regime(codes)


def _fuzzy(cols: dict[str, np.ndarray], weights: Mapping[str, float] | None, p: FeatureParams) -> dict[str, float]:
    raw = {"mtf_consensus": cols["mtf_consensus"], **{k: cols[k] for k in (
        "iv_rank", "vix", "rsi", "adx", "bb_position", "bb_width", "stoch_k", "psar_p", "volume_ratio",
        "sma_distance")}}
    res = fuzzy.evaluate(raw, weights, p.fuzzy_params)
    for name in fuzzy.FACTORS:
        cols[f"mu_{name}"] = res.membership[name]
    cols["fuzzy_confidence"] = res.confidence
    return res.weights


def compute_features(
    bars_5m: pd.DataFrame,
    daily: pd.DataFrame,
    vix: pd.DataFrame,
    timeframes: Sequence[int] = MTFConfig().timeframes,
    bars_1m: pd.DataFrame | None = None,
    *,
    bars_by_tf: Mapping[int, pd.DataFrame] | None = None,
    iv_atm: ArrayLike | None = None,
    weights: Mapping[str, float] | None = None,
    params: FeatureParams | None = None,
) -> FeatureFrame:
    """All features of ``bars_5m`` (close-labelled, tz New York) in one vectorised, causal pass.

    ``bars_by_tf`` may hold pre-resampled bars per timeframe (``data_factory.bars.resample_bars``);
    a timeframe not given is taken from ``bars_5m`` / ``bars_1m`` or resampled locally.
    ``iv_atm`` (decimal, per five-minute bar) replaces VIX/100 in the VRP when given.
    """
    p = params or FeatureParams()
    index = pd.DatetimeIndex(bars_5m.index)
    if index.tz is None:
        raise DataError("five-minute bars need a timezone-aware index (America/New_York); localize them first")
    local = mtf.local_ns(index)
    cols = _intraday(bars_5m, p)
    cols.update(_daily(daily, vix, local - local % mtf.NS_PER_DAY, p))
    with np.errstate(divide="ignore", invalid="ignore"):
        cols["day_return"] = cols["close"] / cols["prev_close"] - 1.0
    cols["iv_atm"] = cols["vix"] / 100.0 if iv_atm is None else np.array(iv_atm, dtype=np.float64).reshape(-1)
    if len(cols["iv_atm"]) != len(index):
        raise DataError(f"iv_atm has {len(cols['iv_atm'])} values for {len(index)} bars; give one per 5-minute bar")
    cols["vrp"] = vol.vrp(cols["iv_atm"], cols["rv_daily"])
    cols["vrp_ok"] = vol.vrp_gate(cols["vrp"], p.vrp_min)
    _regime(cols, p)
    frames = _timeframe_frames(bars_5m, bars_1m, timeframes, bars_by_tf)
    res = mtf.mtf_consensus(frames, index, timeframes, p.mtf_params, p.mtf_require_all)
    cols["mtf_consensus"], cols["mtf_available"] = res.consensus, res.available
    for m, s in res.signals.items():
        cols[f"mtf_signal_{m}"] = s
    used_weights = _fuzzy(cols, weights, p)
    for arr in cols.values():
        arr.setflags(write=False)
    return FeatureFrame(index, MappingProxyType(cols), res.reasons, used_weights)


def session_close_regimes(daily: pd.DataFrame, vix: pd.DataFrame, params: FeatureParams | None = None) -> pd.DataFrame:
    """The regime of every session at its close, from daily bars alone (index = ``daily``'s dates).

    Same inputs as ``compute_features`` reads at a session's last five-minute bar (whose close is
    the daily close): previous-session ADX, SMAs, VIX, VIX change and IV rank, and the day's
    return to the close.  Columns: ``regime`` (int code), ``crash_trigger``, ``vix``,
    ``vix_change``, ``day_return``.  For regime statistics over decades without intraday bars.
    """
    p = params or FeatureParams()
    idx = pd.DatetimeIndex(daily.index)
    days = (idx.tz_localize(None) if idx.tz is not None else idx).normalize().as_unit("ns").asi8
    cols = _daily(daily, vix, days, p)
    cols["close"] = daily["close"].to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        cols["day_return"] = cols["close"] / cols["prev_close"] - 1.0
    _regime(cols, p)
    return pd.DataFrame({k: cols[k] for k in ("regime", "crash_trigger", "vix", "vix_change", "day_return")},
                        index=daily.index)


FEATURE_COLUMNS: tuple[str, ...] = (
    "close", "rsi", "adx", "plus_di", "minus_di", "atr", "sma20", "sma_distance", "bb_middle", "bb_upper",
    "bb_lower", "bb_position", "bb_width", "stoch_k", "stoch_d", "psar", "psar_p", "volume_ratio", "rv",
    "prev_close", "d_adx", "d_sma_fast", "d_sma_slow", "rv_daily", "sigma_star", "vix", "vix_change",
    "iv_rank", "iv_percentile", "day_return", "iv_atm", "vrp", "vrp_ok", "crash_trigger", "regime", "time_in_regime",
    "mtf_consensus", "mtf_available",
    *(f"mu_{f}" for f in fuzzy.FACTORS), "fuzzy_confidence",
)  # plus one ``mtf_signal_<m>`` per configured timeframe, after mtf_available
