"""DeepMamba forecaster: pure model, data pipeline, training loop, inference and evaluation.

File I/O (checkpoints, TensorBoard, loading bars) lives in ``core.modes.train``; benchmarks in
``core.bench.forecaster``.
"""

from intelligence.forecaster.data import FEATURE_NAMES, WARMUP, FeatureStream, NormStats, compute_features
from intelligence.forecaster.evaluate import evaluate_forecaster
from intelligence.forecaster.infer import (
    ForecastArrays,
    ForecastBundle,
    StepForecast,
    StreamingForecaster,
    batch_forecast,
    bundle_from_checkpoint,
)
from intelligence.forecaster.model import DeepMamba, ModelConfig
from intelligence.forecaster.scan import mamba_ssm_available, selective_scan
from intelligence.forecaster.train import EpochReport, TrainParams, TrainResult, fit_forecaster

__all__ = [
    "FEATURE_NAMES", "WARMUP", "DeepMamba", "EpochReport", "FeatureStream", "ForecastArrays", "ForecastBundle",
    "ModelConfig", "NormStats", "StepForecast", "StreamingForecaster", "TrainParams", "TrainResult",
    "batch_forecast", "bundle_from_checkpoint", "compute_features", "evaluate_forecaster", "fit_forecaster",
    "mamba_ssm_available", "selective_scan",
]
