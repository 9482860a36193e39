"""Config -> feature arrays for the decision core, computed once per run over all bars.

Every array is aligned to the base bars and causal: the value at bar t uses data up to t only
(daily inputs enter through the previous completed session).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.volatility import iv_rank
from core.config import AppConfig


def _previous_session_values(bars_index: pd.DatetimeIndex, daily_index: pd.DatetimeIndex,
                             values: np.ndarray) -> np.ndarray:
    """For each bar, the daily value of the last session strictly before the bar's session."""
    idx = pd.DatetimeIndex(bars_index)
    days = (idx.tz_localize(None) if idx.tz is not None else idx).normalize()
    pos = np.searchsorted(pd.DatetimeIndex(daily_index), days, side="left") - 1
    return np.where(pos >= 0, values[np.maximum(pos, 0)], np.nan)


def feature_arrays(cfg: AppConfig, bars: pd.DataFrame, daily: pd.DataFrame, vix: pd.DataFrame,
                   vix_intraday: np.ndarray) -> dict[str, np.ndarray]:
    """Baseline features: intraday VIX and the IV rank of VIX over the trailing 252 sessions."""
    ivr_daily = iv_rank(vix["vix"].to_numpy(float))
    feats: dict[str, np.ndarray] = {
        "vix": np.asarray(vix_intraday, float),
        "iv_rank": _previous_session_values(bars.index, vix.index, ivr_daily),
        "vix_is_proxy": _previous_session_values(bars.index, vix.index, vix["is_proxy"].to_numpy(float)),
    }
    return feats
