"""Forecaster training and evaluation with their file I/O: data loading, checkpoints, TensorBoard, tqdm.

The numerics live in ``intelligence.forecaster`` (pure); this module is the edge that reads
bars, saves and loads checkpoints (``torch.save`` / ``torch.load(map_location='cpu',
weights_only=True)``, so weights trained on a GPU load on a CPU machine), writes one
TensorBoard scalar per head and split per epoch and shows a progress bar.

Example::

    from core.modes.train import train_forecaster, evaluate_checkpoint
    from intelligence.forecaster import TrainParams
    result = train_forecaster(TrainParams(epochs=2, out="/tmp/m.pth", tensorboard_dir=""))
    metrics = evaluate_checkpoint(result.checkpoint_path)
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from core.dto import ConfigError, DataError
from intelligence.forecaster.evaluate import evaluate_forecaster
from intelligence.forecaster.infer import ForecastBundle, bundle_from_checkpoint
from intelligence.forecaster.train import EpochReport, TrainParams, TrainResult, fit_forecaster

SP500_SOURCE = "arch.data.sp500 (S&P 500 index daily OHLCV, prices / 10)"
TEST_START, TEST_END = dt.date(2017, 1, 1), dt.date(2018, 12, 31)


def load_sp500_daily_bars() -> pd.DataFrame:
    """Real daily S&P 500 bars 1999-2018 shipped with ``arch``; prices / 10 (SPY-like), index ``date``."""
    from arch.data import sp500

    raw = sp500.load()
    bars = pd.DataFrame({c.lower(): raw[c].astype("float64") / 10.0 for c in ("Open", "High", "Low", "Close")})
    bars["volume"] = raw["Volume"].astype("float64")
    bars.index = pd.DatetimeIndex(raw.index).as_unit("ns").rename("date")
    return bars


PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding core/, models/, data_factory/
SHIPPED_CHECKPOINT = "models/mamba_active.pth"
RUNS_FOLDER = "models/runs"


def resolve_model_path(path: str | Path) -> Path:
    """A checkpoint path as given, or -- when relative and absent from the current folder -- relative to
    the installed package, so the shipped ``models/mamba_active.pth`` is found from any folder."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    packaged = PACKAGE_ROOT / p
    return packaged if packaged.exists() else p


def new_checkpoint_path(seed: int, now: dt.datetime | None = None) -> Path:
    """A fresh ``models/runs/<UTC time>-s<seed>.pth`` under the package (never an existing file)."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d-%H%M%S")
    folder = PACKAGE_ROOT / RUNS_FOLDER
    candidate = folder / f"{stamp}-s{seed}.pth"
    k = 2
    while candidate.exists():
        candidate = folder / f"{stamp}-s{seed}-{k}.pth"
        k += 1
    return candidate


def training_target(model: str | None, seed: int, force: bool = False, resume: bool = False) -> Path:
    """Where ``--mode train`` writes: ``--model PATH`` when given, else a new ``models/runs/<id>.pth``.

    An existing file is overwritten only with ``force`` (or continued with ``resume``); a folder,
    never.  The shipped checkpoint counts as given only when named explicitly.
    """
    if not model:
        if resume:
            raise ConfigError("--resume needs --model PATH: the checkpoint to continue from")
        return new_checkpoint_path(seed)
    path = Path(model).expanduser()
    if path.is_dir():
        raise ConfigError(f"--model {model}: is a folder; give a checkpoint file name such as models/my.pth")
    if path.exists() and not (force or resume):
        raise ConfigError(f"--model {model}: already exists; add --force to overwrite it, --resume to continue "
                          "from it, or leave out --model to write a new models/runs/<id>.pth")
    if resume and not path.is_file():
        raise ConfigError(f"--model {model}: not found, so there is nothing to --resume; drop --resume")
    return path


def save_checkpoint(path: str | Path, checkpoint: dict) -> None:
    """Write atomically (temporary file beside it, then rename); ConfigError when the place is not writable."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.save(checkpoint, tmp)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"--model {path}: cannot write the checkpoint ({exc.strerror or exc}); "
                          "choose a writable place") from None


def load_checkpoint(path: str | Path) -> dict:
    """Load on the CPU whatever device it was trained on; ConfigError when missing or not a checkpoint."""
    resolved = resolve_model_path(path)
    try:
        checkpoint = torch.load(resolved, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConfigError(
            f"forecaster checkpoint {path} not found; train one with --mode train"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"--model {path}: is a folder, not a checkpoint file") from None
    except Exception as exc:  # torch / pickle raise many types for a file that is not a checkpoint
        first = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise ConfigError(f"--model {path}: not a forecaster checkpoint ({first}); pass a .pth written by "
                          "--mode train") from None
    if not isinstance(checkpoint, dict) or "model_config" not in checkpoint:
        raise ConfigError(f"--model {path}: not a forecaster checkpoint (no model_config); pass a .pth written by "
                          "--mode train")
    return checkpoint


def load_bundle(path: str | Path) -> ForecastBundle:
    """The trained forecaster in a checkpoint file, ready for ``batch_forecast`` / ``StreamingForecaster``."""
    checkpoint = load_checkpoint(path)
    try:
        return bundle_from_checkpoint(checkpoint)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"--model {path}: the checkpoint is incomplete or from another version "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''}); "
                          "retrain it with --mode train") from None


def _tensorboard(directory: str):  # noqa: ANN202 - SummaryWriter or None; tensorboard imported lazily
    if not directory:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=directory)


def _log_epoch(writer, report: EpochReport) -> None:  # noqa: ANN001 - SummaryWriter
    for split, losses in (("train", report.train_loss), ("val", report.val_loss)):
        for head, value in losses.items():
            writer.add_scalar(f"loss_{head}/{split}", value, report.epoch)
    writer.add_scalar("lr", report.lr, report.epoch)
    writer.flush()


def train_forecaster(params: TrainParams, bars: pd.DataFrame | None = None, source: str = "",
                     progress: bool = True, force: bool = False) -> TrainResult:
    """Train on ``bars`` (default: the embedded S&P 500 daily series) over ``[params.start, params.end]``.

    Saves a checkpoint to ``params.out`` after every epoch (config, normalisation, target scales,
    data range, model / best / optimiser state) and continues from it when ``params.resume``.
    An existing ``params.out`` is overwritten only with ``force`` or ``params.resume``.
    """
    out = Path(params.out)
    if out.is_dir() or (out.exists() and not (force or params.resume)):
        training_target(str(out), 0, force, params.resume)  # raises the one-line ConfigError
    if bars is None:
        bars, source = load_sp500_daily_bars(), source or SP500_SOURCE
    resume = load_checkpoint(params.out) if params.resume and Path(params.out).exists() else None
    if resume is not None and resume.get("model_config", {}).get("d_model") != params.d_model:
        raise ConfigError(f"cannot resume {params.out}: it holds a different architecture; drop --resume")
    writer = _tensorboard(params.tensorboard_dir)
    bar = tqdm(desc="forecaster", unit="batch", disable=not progress, leave=False)

    def on_batch(losses: dict[str, float]) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{losses['total']:.4f}", refresh=False)

    def on_epoch(report: EpochReport, checkpoint: dict) -> None:
        save_checkpoint(params.out, checkpoint)
        if writer is not None:
            _log_epoch(writer, report)
        bar.set_description(f"forecaster epoch {report.epoch}/{params.epochs} val {report.val_loss['total']:.4f}")

    try:
        _, final = fit_forecaster(bars, params, resume=resume, source=source, on_batch=on_batch,
                                  on_epoch=on_epoch, clock=time.perf_counter)
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    save_checkpoint(params.out, final)
    return TrainResult(str(params.out), int(final["epoch"]), int(final["best_epoch"]), float(final["best_val_loss"]),
                       tuple(EpochReport(**h) for h in final["history"]), dict(final["data"]))


def evaluate_checkpoint(path: str | Path, bars: pd.DataFrame | None = None, test_start: dt.date = TEST_START,
                        test_end: dt.date = TEST_END) -> dict[str, object]:
    """Out-of-sample metrics of a checkpoint beside its baselines (see intelligence.forecaster.evaluate)."""
    bundle = load_bundle(path)
    bars = load_sp500_daily_bars() if bars is None else bars
    if bars.index[-1] < pd.Timestamp(test_end) - pd.Timedelta(days=10):
        raise DataError(f"forecaster evaluation needs bars up to {test_end}; the frame ends {bars.index[-1].date()}")
    return evaluate_forecaster(bundle, bars, test_start, test_end)
