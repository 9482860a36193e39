"""Config -> feature arrays for the decision core, computed once per run over all bars.

Every array is aligned to the base bars and causal: the value at bar t uses data up to t only
(daily inputs enter through the previous completed session; see ``intelligence.features``).
The decision core reads these names:

* ``vix`` — VIX as the chain model sees it at the bar (live, causal); ``vix_prev_close`` the
  previous session's close (the one the fuzzy VIX membership uses);
* ``iv_rank``, ``sigma_star``, ``vrp``, ``regime_code`` (index into ``core.dto.Regime``, NaN
  during warm-up), ``regime_crash`` (1.0 in CRASH_MODE), ``bb_upper``/``bb_lower``;
* ``gap`` — the session's opening gap, NaN where the daily frame marks the open as modelled
  (``open_modelled``, stale vendor opens; the gap gate is then off);
* ``mtf_consensus`` (NaN where unavailable, reason in the decisions log), ``fuzzy_confidence``
  (F_t, blended with the forecaster when ``--use-neural``) and ``mu_<factor>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np
import pandas as pd

from analytics.market_structure import daily_gaps, ratio_zscore
from core.config import AppConfig
from core.dto import FeatureSet, Regime
from intelligence import fuzzy
from intelligence.features import FeatureFrame, FeatureParams, compute_features
from intelligence.mtf import MTFParams
from intelligence.regime import REGIME_ORDER, RegimeThresholds

RAW_OF_FACTOR = {"mtf": "mtf_consensus", "iv_rank": "iv_rank", "vix": "vix_prev_close", "rsi": "rsi", "adx": "adx",
                 "bollinger": "bb_position", "stochastic": "stoch_k", "psar": "psar_p", "volume": "volume_ratio",
                 "sma_distance": "sma_distance"}


def feature_params(cfg: AppConfig) -> FeatureParams:
    ind = cfg.indicators
    fz = fuzzy.FuzzyParams(rsi_neutral_min=ind.rsi_neutral_min, rsi_neutral_max=ind.rsi_neutral_max,
                           adx_low=ind.adx_threshold_low, adx_high=ind.adx_threshold_high,
                           bb_width_scale=ind.bbands_squeeze_threshold, stoch_neutral_min=ind.stoch_neutral_min,
                           stoch_neutral_max=ind.stoch_neutral_max, sma_max_distance=ind.sma_max_distance)
    regime = RegimeThresholds(trend_adx=ind.adx_threshold_low, high_vol_vix=cfg.filters.vix_threshold_low)
    return FeatureParams(psar_acceleration=ind.psar_acceleration, psar_maximum=ind.psar_max_acceleration,
                         vrp_min=cfg.filters.vrp_min, mtf_require_all=True, mtf_params=MTFParams(),
                         regime_thresholds=regime, fuzzy_params=fz)


def compute_frame(cfg: AppConfig, bars: pd.DataFrame, daily: pd.DataFrame, vix: pd.DataFrame,
                  bars_1m: pd.DataFrame | None) -> FeatureFrame:
    timeframes = cfg.mtf.timeframes if cfg.mtf.use_mtf else (5,)
    return compute_features(bars, daily, vix, timeframes, bars_1m, weights=cfg.fuzzy.weights,
                            params=feature_params(cfg))


def feature_set(cfg: AppConfig, bars: pd.DataFrame, daily: pd.DataFrame, vix: pd.DataFrame,
                vix_intraday: np.ndarray, bars_1m: pd.DataFrame | None = None,
                forecast: Mapping[str, np.ndarray] | None = None,
                qqq_daily: pd.DataFrame | None = None) -> FeatureSet:
    """Every declared feature (``core.dto.FEATURE_NAMES``) over the bars, validated once."""
    feats, reasons = feature_arrays(cfg, bars, daily, vix, vix_intraday, bars_1m, forecast, qqq_daily)
    return FeatureSet.from_arrays(feats, reasons)


def feature_arrays(cfg: AppConfig, bars: pd.DataFrame, daily: pd.DataFrame, vix: pd.DataFrame,
                   vix_intraday: np.ndarray, bars_1m: pd.DataFrame | None = None,
                   forecast: Mapping[str, np.ndarray] | None = None,
                   qqq_daily: pd.DataFrame | None = None) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """All arrays the decision core and the logs read, and the MTF reason table their
    ``mtf_reason_code`` indexes (see the module docstring)."""
    frame = compute_frame(cfg, bars, daily, vix, bars_1m)
    feats = {name: np.asarray(frame[name], dtype=float) for name in frame.names}
    feats["vix_prev_close"] = feats["vix"]
    feats["vix"] = np.asarray(vix_intraday, dtype=float)
    code = feats.pop("regime")
    order = [list(Regime).index(r) for r in REGIME_ORDER]
    mapped = np.where(code >= 0, np.take(order, np.maximum(code, 0).astype(int)), np.nan)
    feats["regime_code"] = mapped
    feats["regime_crash"] = (mapped == list(Regime).index(Regime.CRASH_MODE)).astype(float)
    feats["vix_is_proxy"] = _previous_session_values(bars.index, vix.index, vix["is_proxy"].to_numpy(float))
    if not cfg.mtf.use_mtf:
        feats["mtf_consensus"] = np.full(len(bars), np.nan)
    feats["mtf_reason_code"], reasons = reason_codes(frame.mtf_reasons)
    _market_structure(feats, bars, daily, qqq_daily)
    nan = np.full(len(bars), np.nan)
    for name in ("neural_direction", "neural_prob_neutral", "neural_confidence"):
        feats[name] = nan.copy()  # NaN: no forecaster in this run
    if forecast is not None and cfg.forecaster.use_neural:
        _blend_forecast(cfg, feats, forecast)
    return feats, reasons


def reason_codes(reasons: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """MTF reason strings as float codes (arrays stay numeric) and the table they index."""
    table: list[str] = []
    out = np.empty(len(reasons))
    for text in pd.unique(reasons):
        table.append(str(text))
        out[reasons == text] = len(table) - 1
    return out, tuple(table)


def _blend_forecast(cfg: AppConfig, feats: dict[str, np.ndarray], forecast: Mapping[str, np.ndarray]) -> None:
    """C = w_n·μ_neural + (1 − w_n)·F_t with μ_neural = conf·p_neutral + (1 − conf)·F_t."""
    f_t = feats["fuzzy_confidence"]
    conf = np.nan_to_num(np.asarray(forecast["confidence"], float), nan=0.0)
    p_neutral = np.nan_to_num(np.asarray(forecast["prob_neutral"], float), nan=1 / 3)
    mu = fuzzy.neural_membership(f_t, p_neutral, conf)
    w = cfg.fuzzy.neural_weight
    feats["fuzzy_confidence_rules"] = f_t
    feats["fuzzy_confidence"] = w * mu + (1.0 - w) * f_t
    feats["neural_prob_neutral"] = p_neutral
    feats["neural_confidence"] = conf
    feats["neural_direction"] = (np.nan_to_num(np.asarray(forecast["prob_bull"], float))
                                 - np.nan_to_num(np.asarray(forecast["prob_bear"], float)))


def _market_structure(feats: dict[str, np.ndarray], bars: pd.DataFrame, daily: pd.DataFrame,
                      qqq_daily: pd.DataFrame | None) -> None:
    """Opening gap of the bar's session (known from 09:30 on; NaN on a session whose open is
    modelled, see ``open_is_modelled``) and the SPY/QQQ ratio z-score of the previous session
    (SPEC §3; NaN without a QQQ series)."""
    gaps = daily_gaps(daily)
    idx = pd.DatetimeIndex(bars.index)
    days = (idx.tz_localize(None) if idx.tz is not None else idx).normalize()
    pos = np.searchsorted(pd.DatetimeIndex(daily.index), days, side="left")
    found = (pos < len(daily)) & (pd.DatetimeIndex(daily.index)[np.minimum(pos, len(daily) - 1)] == days)
    gap = np.where(open_is_modelled(daily), np.nan, gaps["gap"].to_numpy(float))
    feats["gap"] = np.where(found, gap[np.minimum(pos, len(gap) - 1)], np.nan)
    if qqq_daily is None or qqq_daily.empty:
        feats["ratio_z"] = np.full(len(bars), np.nan)
        return
    both = daily["close"].to_frame("spy").join(qqq_daily["close"].rename("qqq"), how="inner")
    z = ratio_zscore(both["spy"], both["qqq"]).to_numpy(float)
    feats["ratio_z"] = _previous_session_values(bars.index, pd.DatetimeIndex(both.index), z)


def _previous_session_values(bars_index: pd.DatetimeIndex, daily_index: pd.DatetimeIndex,
                             values: np.ndarray) -> np.ndarray:
    """For each bar, the daily value of the last session strictly before the bar's session."""
    idx = pd.DatetimeIndex(bars_index)
    days = (idx.tz_localize(None) if idx.tz is not None else idx).normalize()
    pos = np.searchsorted(pd.DatetimeIndex(daily_index), days, side="left") - 1
    return np.where(pos >= 0, values[np.maximum(pos, 0)], np.nan)


def open_is_modelled(daily: pd.DataFrame) -> np.ndarray:
    """Bool per daily row: the open is modelled (``data_factory.stale_opens``), so no gap is
    read from it.  A frame without an ``open_modelled`` column has only real opens."""
    if "open_modelled" not in daily.columns:
        return np.zeros(len(daily), dtype=bool)
    return daily["open_modelled"].fillna(False).to_numpy(dtype=bool)


class _Row(Protocol):
    def get(self, name: str) -> float: ...


def factor_log(row: _Row, weights: Mapping[str, float]) -> str:
    """One decisions-log fragment: every factor's raw value, membership and weight, F_t, σ*, regime."""
    parts = []
    for name in fuzzy.FACTORS:
        raw = row.get(RAW_OF_FACTOR[name])
        mu = row.get(f"mu_{name}")
        parts.append(f"{name}={raw:.4g}/mu{mu:.2f}/w{weights.get(name, 0.0):.2f}")
    code = row.get("regime_code")
    regime = list(Regime)[int(code)].value if np.isfinite(code) else "UNKNOWN"
    return (f"F={row.get('fuzzy_confidence'):.3f} sigma*={row.get('sigma_star'):.3f} "
            f"regime={regime} | " + " ".join(parts))
