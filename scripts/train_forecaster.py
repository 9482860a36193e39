"""Reproduce the shipped forecaster checkpoint and its model-card numbers.

    python scripts/train_forecaster.py                 # train models/mamba_active.pth, then evaluate
    python scripts/train_forecaster.py --evaluate-only # re-evaluate the shipped checkpoint

Writes ``models/mamba_active.pth`` and ``models/mamba_active.metrics.json`` (out-of-sample
2017-2018 metrics beside the baselines) and prints the metrics as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.modes.train import evaluate_checkpoint, train_forecaster  # noqa: E402
from intelligence.forecaster.train import TrainParams  # noqa: E402

SHIPPED = TrainParams()  # 1999-01-01..2016-12-31, lookback 60, 2 layers, d_model 32, 12 epochs, seed 7, CPU 1 thread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluate-only", action="store_true", help="skip training; evaluate the checkpoint")
    parser.add_argument("--out", default=SHIPPED.out, help="checkpoint path (default %(default)s)")
    args = parser.parse_args(argv)
    params = TrainParams(**{**SHIPPED.as_dict(), "start": SHIPPED.start, "end": SHIPPED.end,
                            "loss_weights": SHIPPED.loss_weights, "out": args.out, "device": "cpu"})
    if not args.evaluate_only:
        result = train_forecaster(params, force=True)  # regenerates the shipped checkpoint on purpose
        print(f"trained {result.epochs_run} epochs, kept epoch {result.best_epoch} "
              f"(val loss {result.best_val_loss:.4f})")
    metrics = evaluate_checkpoint(params.out)
    metrics_path = Path(params.out).with_suffix(".metrics.json")
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
