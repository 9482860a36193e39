"""Training of the DeepMamba forecaster (pure: no file I/O; core/train_mode.py saves and logs).

Loss per sample (targets scaled by training-split statistics, see data.TargetSpec)::

    L = w_r·(r̂ − r_{t+1}/s_r)²  +  w_g·CE(regime logits, label)  +  w_v·QLIKE
    QLIKE = y·exp(−v̂) + v̂ − log y − 1,   y = var_h/s_v,  v̂ = predicted log variance

Optimiser AdamW, learning rate ``lr·½(1 + cos(π·epoch/epochs))`` per epoch (stateless, so
resuming needs no scheduler state), gradient norm clipped at 1. The kept model is the one
with the lowest validation loss. On CPU the run is bit-identical for a seed: parameters are
initialised under ``torch.manual_seed(seed)`` inside a forked RNG, batches are shuffled by
``numpy.random.default_rng([seed, epoch])`` and deterministic algorithms are enforced with a
fixed thread count.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import cast

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from core.config import ForecasterConfig, RunConfig
from core.dto import ConfigError, DataError
from intelligence.forecaster.data import (
    FEATURE_NAMES,
    WARMUP,
    NormStats,
    TargetSpec,
    WindowSampler,
    compute_features,
    fit_target_spec,
    raw_targets,
    regime_labels,
    sample_indices,
)
from intelligence.forecaster.model import DeepMamba, HeadOutputs, ModelConfig

CHECKPOINT_FORMAT = "quantor-deepmamba/1"
HEAD_NAMES = ("return", "regime", "vol")


@dataclass(frozen=True, slots=True)
class TrainParams:
    """Every knob of a forecaster training run (frozen; validated on construction).

    ``seed`` and ``out`` default to ``core.config``'s ``run.seed`` and ``forecaster.model``.
    """

    start: dt.date = dt.date(1999, 1, 1)
    end: dt.date = dt.date(2016, 12, 31)
    lookback: int = 60
    d_model: int = 32
    layers: int = 2
    d_state: int = 16
    expand: int = 2
    head_dim: int = 16
    horizon: int = 10
    epochs: int = 12
    batch: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-2
    seed: int = RunConfig().seed
    device: str = "auto"
    out: str = ForecasterConfig().model
    tensorboard_dir: str = "reports/tensorboard/forecaster"
    resume: bool = False
    val_fraction: float = 0.15
    threads: int = 1
    bars_per_year: float = 252.0
    loss_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        if not (isinstance(self.start, dt.date) and isinstance(self.end, dt.date) and self.start < self.end):
            raise ConfigError(f"forecaster start={self.start} must be a date before end={self.end}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"forecaster device={self.device!r} must be auto, cpu or cuda")
        for name in ("lookback", "d_model", "layers", "d_state", "expand", "head_dim", "horizon", "epochs",
                     "batch", "threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"forecaster {name}={getattr(self, name)} must be a positive integer")
        if not (0.0 < self.val_fraction < 0.5 and self.lr > 0 and self.weight_decay >= 0):
            raise ConfigError("forecaster val_fraction must lie in (0, 0.5), lr > 0 and weight_decay >= 0")
        self.model_config(len(FEATURE_NAMES))

    def model_config(self, n_features: int) -> ModelConfig:
        return ModelConfig(n_features=n_features, d_model=self.d_model, n_layers=self.layers, d_state=self.d_state,
                           expand=self.expand, head_dim=self.head_dim, lookback=self.lookback)

    @property
    def purge(self) -> int:
        """Bars between the last training and first validation sample: lookback + horizon."""
        return self.lookback + self.horizon

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["start"], d["end"], d["loss_weights"] = self.start.isoformat(), self.end.isoformat(), list(self.loss_weights)
        return d


@dataclass(frozen=True, slots=True)
class EpochReport:
    epoch: int  # 1-based
    lr: float
    train_loss: dict[str, float]
    val_loss: dict[str, float]
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class TrainResult:
    """Outcome of a run: where the checkpoint went, per-epoch losses and the kept epoch."""

    checkpoint_path: str
    epochs_run: int
    best_epoch: int
    best_val_loss: float
    history: tuple[EpochReport, ...]
    data_range: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Dataset:
    """Everything a run needs from the bars of its date range."""

    dates: pd.DatetimeIndex
    sampler: WindowSampler
    norm: NormStats
    spec: TargetSpec
    train_idx: np.ndarray
    val_idx: np.ndarray

    def data_range(self) -> dict[str, str]:
        d = self.dates
        return {"first_bar": d[0].date().isoformat(), "last_bar": d[-1].date().isoformat(),
                "train_first": d[self.train_idx[0]].date().isoformat(),
                "train_last": d[self.train_idx[-1]].date().isoformat(),
                "val_first": d[self.val_idx[0]].date().isoformat(), "val_last": d[self.val_idx[-1]].date().isoformat()}


def build_dataset(bars: pd.DataFrame, params: TrainParams) -> Dataset:
    """Slice ``[start, end]``, fit normalisation and target scales on the training split only."""
    frame = bars.loc[pd.Timestamp(params.start):pd.Timestamp(params.end)]
    close = frame["close"].to_numpy(dtype=np.float64) if "close" in frame else np.empty(0)
    if len(frame) < WARMUP + params.lookback + params.purge + 4 * params.horizon:
        raise DataError(f"forecaster range {params.start}..{params.end} holds {len(frame)} bars; "
                        f"need more than {WARMUP + params.lookback + params.purge} for lookback {params.lookback}")
    feats = compute_features(frame)
    nxt, fwd, var = raw_targets(close, params.horizon)
    valid = np.isfinite(nxt) & np.isfinite(fwd) & np.isfinite(var)
    first = WARMUP + params.lookback - 1
    usable = sample_indices(valid, first, len(frame))
    val_start = int(usable[int(len(usable) * (1.0 - params.val_fraction))])
    train_idx = sample_indices(valid, first, val_start - params.purge)
    val_idx = sample_indices(valid, val_start, len(frame))
    norm = NormStats.fit(feats[WARMUP:train_idx[-1] + 1])
    spec = fit_target_spec(close, train_idx, params.horizon, params.bars_per_year)
    targets = {"ret": nxt / spec.ret_scale, "label": regime_labels(fwd, spec.regime_threshold),
               "var": var / spec.var_scale}
    sampler = WindowSampler(norm.apply(feats), targets, params.lookback)
    return Dataset(frame.index, sampler, norm, spec, train_idx, val_idx)


def head_losses(out: HeadOutputs, target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-head mean losses (see module docstring)."""
    y = target["var"].to(out.log_var.dtype).clamp_min(1e-8)
    return {
        "return": F.mse_loss(out.ret, target["ret"].to(out.ret.dtype)),
        "regime": F.cross_entropy(out.regime_logits, target["label"]),
        "vol": (y * torch.exp(-out.log_var) + out.log_var - torch.log(y) - 1.0).mean(),
    }


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is a ConfigError."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("forecaster device='cuda' but no CUDA GPU is visible; use --device cpu or auto")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextlib.contextmanager
def reproducible(device: torch.device, seed: int, threads: int) -> Iterator[None]:
    """Seeded, forked RNG; deterministic algorithms and fixed threads on CPU; TF32 on CUDA."""
    prev = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads(),
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    devices = [torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        else:
            torch.use_deterministic_algorithms(True)
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(prev[0])
            torch.set_num_threads(prev[1])
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = prev[2], prev[3]


def _run_batches(model: DeepMamba, data: Dataset, idx: np.ndarray, params: TrainParams, device: torch.device,
                 optimizer: torch.optim.Optimizer | None, on_batch: Callable[[dict[str, float]], None] | None,
                 ) -> dict[str, float]:
    """One pass over ``idx`` in batches (training when an optimizer is given); mean head losses."""
    sums = dict.fromkeys((*HEAD_NAMES, "total"), 0.0)
    w = dict(zip(HEAD_NAMES, params.loss_weights, strict=True))
    for i in range(0, len(idx), params.batch):
        x, target = data.sampler.batch(idx[i:i + params.batch])
        x, target = x.to(device), {k: v.to(device) for k, v in target.items()}
        with torch.set_grad_enabled(optimizer is not None):
            losses = head_losses(model(x, last_only=True), target)
            total = cast(torch.Tensor, sum(w[k] * losses[k] for k in HEAD_NAMES))  # 0 + tensors is a tensor
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        values = {k: float(v.detach()) for k, v in losses.items()} | {"total": float(total.detach())}
        for k, v in values.items():
            sums[k] += v * len(x)
        if on_batch is not None:
            on_batch(values)
    return {k: v / max(len(idx), 1) for k, v in sums.items()}


def make_checkpoint(model_state: dict, best_state: dict, optimizer: torch.optim.Optimizer, data: Dataset,
                    params: TrainParams, history: list[EpochReport], best: tuple[int, float], source: str) -> dict:
    """Checkpoint dict (tensors, numbers, strings and lists only: loads with ``weights_only=True``)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "model_config": params.model_config(len(FEATURE_NAMES)).as_dict(),
        "feature_names": list(FEATURE_NAMES),
        "norm": {"mean": list(data.norm.mean), "std": list(data.norm.std), "clip": data.norm.clip},
        "targets": asdict(data.spec),
        "data": data.data_range() | {"source": source, "n_train": len(data.train_idx), "n_val": len(data.val_idx)},
        "train_params": params.as_dict(),
        "epoch": len(history),
        "best_epoch": best[0],
        "best_val_loss": best[1],
        "history": [asdict(r) for r in history],
        "model_state": model_state,
        "best_state": best_state,
        "optimizer_state": optimizer.state_dict(),
    }


def _restore(resume: dict | None, model: DeepMamba, optimizer: torch.optim.Optimizer
             ) -> tuple[list[EpochReport], dict, tuple[int, float]]:
    if resume is None:
        return [], copy.deepcopy(model.state_dict()), (0, math.inf)
    model.load_state_dict(resume["model_state"])
    optimizer.load_state_dict(resume["optimizer_state"])
    history = [EpochReport(**h) for h in resume["history"]]
    return history, resume["best_state"], (int(resume["best_epoch"]), float(resume["best_val_loss"]))


def fit_forecaster(
    bars: pd.DataFrame, params: TrainParams, *, resume: dict | None = None, source: str = "",
    on_batch: Callable[[dict[str, float]], None] | None = None,
    on_epoch: Callable[[EpochReport, dict], None] | None = None, clock: Callable[[], float] | None = None,
) -> tuple[DeepMamba, dict]:
    """Train (or continue ``resume``, a checkpoint dict) and return ``(best model, final checkpoint dict)``.

    ``on_epoch(report, checkpoint)`` is called after every epoch (the caller logs and saves).
    """
    device = resolve_device(params.device)
    data = build_dataset(bars, params)
    with reproducible(device, params.seed, params.threads):
        model = DeepMamba(params.model_config(len(FEATURE_NAMES))).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
        history, best_state, best = _restore(resume, model, optimizer)
        checkpoint = make_checkpoint(copy.deepcopy(model.state_dict()), best_state, optimizer, data, params, history,
                                     best, source)
        for epoch in range(len(history), params.epochs):
            started = clock() if clock else 0.0
            lr = params.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / params.epochs))
            for group in optimizer.param_groups:
                group["lr"] = lr
            order = np.random.default_rng([params.seed, epoch]).permutation(data.train_idx)
            model.train()
            train_loss = _run_batches(model, data, order, params, device, optimizer, on_batch)
            model.eval()
            val_loss = _run_batches(model, data, data.val_idx, params, device, None, None)
            if val_loss["total"] < best[1]:
                best, best_state = (epoch + 1, val_loss["total"]), copy.deepcopy(model.state_dict())
            history.append(EpochReport(epoch + 1, lr, train_loss, val_loss, (clock() - started) if clock else 0.0))
            checkpoint = make_checkpoint(copy.deepcopy(model.state_dict()), best_state, optimizer, data, params,
                                         history, best, source)
            if on_epoch is not None:
                on_epoch(history[-1], checkpoint)
        model.load_state_dict(best_state)
    return model.eval(), checkpoint
