"""Forecaster inference: a whole series at once (before an event loop) or one bar at a time (live).

Both run the same recurrence from the first bar with complete features (``data.WARMUP``), so
the forecast at bar t uses bars ``<= t`` only and the streaming update reproduces the batch
arrays. Forecasts before ``WARMUP + lookback − 1`` are NaN.

Outputs per bar: ``p = softmax(regime logits)`` as (bull, bear, neutral);
``confidence = 1 − H(p)/ln 3`` with ``H(p) = −Σ p log p``; predicted next-bar log return
``r̂·s_r``; predicted annualised volatility over the horizon ``sqrt(bars_per_year · s_v·exp(v̂))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from core.dto import ConfigError, ForecastState
from intelligence.forecaster.data import WARMUP, FeatureStream, NormStats, TargetSpec, compute_features
from intelligence.forecaster.model import DeepMamba, HeadOutputs, LayerState, ModelConfig
from intelligence.forecaster.train import CHECKPOINT_FORMAT

OUTPUT_NAMES = ("prob_bull", "prob_bear", "prob_neutral", "confidence", "predicted_return", "predicted_vol")


@dataclass(slots=True)
class ForecastBundle:
    """A trained model with the statistics it was trained with."""

    model: DeepMamba
    norm: NormStats
    spec: TargetSpec
    data_range: dict[str, object]

    @property
    def first_forecast_bar(self) -> int:
        """Index of the first bar that gets a forecast: ``WARMUP + lookback − 1``."""
        return WARMUP + self.model.cfg.lookback - 1


def bundle_from_checkpoint(checkpoint: dict, use_best: bool = True) -> ForecastBundle:
    """Rebuild a :class:`ForecastBundle` from a checkpoint dict (as loaded with map_location='cpu')."""
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"forecaster checkpoint format {checkpoint.get('format')!r} is not {CHECKPOINT_FORMAT}; "
                          "retrain with scripts/train_forecaster.py")
    model = DeepMamba(ModelConfig(**checkpoint["model_config"]))
    model.load_state_dict(checkpoint["best_state" if use_best else "model_state"])
    norm = checkpoint["norm"]
    return ForecastBundle(model.eval(), NormStats(tuple(norm["mean"]), tuple(norm["std"]), float(norm["clip"])),
                          TargetSpec(**checkpoint["targets"]), dict(checkpoint["data"]))


def _postprocess(heads: HeadOutputs, spec: TargetSpec) -> np.ndarray:
    """Head outputs (…) → columns of :data:`OUTPUT_NAMES` as float64 (…, 6)."""
    probs = torch.softmax(heads.regime_logits.double(), dim=-1)
    entropy = -(probs * torch.log(probs.clamp_min(1e-300))).sum(-1)
    confidence = (1.0 - entropy / math.log(3.0)).clamp(0.0, 1.0)
    ret = heads.ret.double() * spec.ret_scale
    vol = torch.sqrt(spec.bars_per_year * spec.var_scale * torch.exp(heads.log_var.double()))
    return torch.cat([probs, confidence[..., None], ret[..., None], vol[..., None]], dim=-1).cpu().numpy()


@dataclass(frozen=True, slots=True, eq=False)
class ForecastArrays:
    """Forecasts aligned to the bar index (NaN before the first forecast bar)."""

    index: pd.Index
    prob_bull: np.ndarray
    prob_bear: np.ndarray
    prob_neutral: np.ndarray
    confidence: np.ndarray
    predicted_return: np.ndarray
    predicted_vol: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({n: getattr(self, n) for n in OUTPUT_NAMES}, index=self.index)

    def state_at(self, i: int) -> ForecastState:
        """The regime forecast at bar ``i`` (neutral with zero confidence before the first forecast)."""
        if not np.isfinite(self.prob_bull[i]):
            return ForecastState.neutral()
        return _state(self.prob_bull[i], self.prob_bear[i], self.confidence[i])


def _state(bull: float, bear: float, confidence: float) -> ForecastState:
    bull, bear = float(bull), float(bear)
    return ForecastState(prob_bull=bull, prob_bear=bear, prob_neutral=1.0 - bull - bear, confidence=float(confidence))


def batch_forecast(bundle: ForecastBundle, bars: pd.DataFrame, backend: str = "auto") -> ForecastArrays:
    """Forecasts for every bar of ``bars`` in one causal pass (bar t sees bars ``<= t``)."""
    features = bundle.norm.apply(compute_features(bars))
    out = np.full((len(bars), len(OUTPUT_NAMES)), np.nan)
    if len(bars) > WARMUP:
        param = next(bundle.model.parameters())
        x = torch.as_tensor(features[WARMUP:], dtype=param.dtype, device=param.device)[None]
        with torch.no_grad():
            out[WARMUP:] = _postprocess(bundle.model(x, backend=backend), bundle.spec)[0]
        out[:bundle.first_forecast_bar] = np.nan
    return ForecastArrays(bars.index, *(out[:, k].copy() for k in range(len(OUTPUT_NAMES))))


@dataclass(frozen=True, slots=True)
class StepForecast:
    """One streaming forecast."""

    state: ForecastState
    predicted_return: float
    predicted_vol: float


class StreamingForecaster:
    """One-step inference for live use: features and every layer's state are updated per bar."""

    def __init__(self, bundle: ForecastBundle) -> None:
        self.bundle = bundle
        self.features = FeatureStream()
        self.states: list[LayerState] = bundle.model.empty_state(1)
        self.bars_seen = 0
        self._param = next(bundle.model.parameters())

    @torch.no_grad()
    def update(self, high: float, low: float, close: float, volume: float) -> StepForecast | None:
        """Consume one closed bar; its forecast, or None before the first forecast bar."""
        row = self.features.update(high, low, close, volume)
        self.bars_seen += 1
        if row is None:
            return None
        x = torch.as_tensor(self.bundle.norm.apply(row), dtype=self._param.dtype, device=self._param.device)[None]
        heads, self.states = self.bundle.model.step(x, self.states)
        if self.bars_seen <= self.bundle.first_forecast_bar:
            return None
        bull, bear, _, conf, ret, vol = _postprocess(heads, self.bundle.spec)[0]
        return StepForecast(_state(bull, bear, conf), float(ret), float(vol))

    def warm_up(self, bars: pd.DataFrame) -> StepForecast | None:
        """Feed historical bars in order; the forecast after the last one."""
        result = None
        cols = [bars[c].to_numpy(dtype=np.float64) for c in ("high", "low", "close", "volume")]
        for h, lo, c, v in zip(*cols, strict=True):
            result = self.update(h, lo, c, v)
        return result
