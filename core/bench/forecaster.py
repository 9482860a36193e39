"""Forecaster benchmarks (run by ``--mode benchmark``; never asserted in tests).

* Training throughput: forward + backward tokens/s of a 4-layer, d_model-64 DeepMamba on a
  random batch of 32 x 128 bars (tokens = batch x sequence), chunked scan and, for reference,
  the naive sequential scan.
* Streaming inference: milliseconds per bar of ``StreamingForecaster.update`` (features +
  every layer's recurrent step) on the same architecture.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from core.config import RunConfig
from intelligence.forecaster.data import FEATURE_NAMES, NormStats, TargetSpec
from intelligence.forecaster.infer import ForecastBundle, StreamingForecaster
from intelligence.forecaster.model import DeepMamba, ModelConfig
from intelligence.forecaster.scan import mamba_ssm_available


def _throughput(model: DeepMamba, x: torch.Tensor, backend: str, steps: int) -> float:
    """Tokens per second of forward + backward (mean over ``steps`` after one warm-up step)."""
    def one() -> None:
        model.zero_grad(set_to_none=True)
        out = model(x, backend=backend)
        (out.ret.square().mean() + out.log_var.square().mean() + out.regime_logits.square().mean()).backward()

    one()
    start = time.perf_counter()
    for _ in range(steps):
        one()
    return x.shape[0] * x.shape[1] * steps / (time.perf_counter() - start)


def _streaming_ms(model: DeepMamba, bars: int, rng: np.random.Generator) -> float:
    n = len(FEATURE_NAMES)
    bundle = ForecastBundle(model.eval(), NormStats((0.0,) * n, (1.0,) * n), TargetSpec(10, 0.01, 0.01, 1e-4), {})
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, bars)))
    stream = StreamingForecaster(bundle)
    stream.warm_up(pd.DataFrame({"high": close * 1.005, "low": close * 0.995, "close": close,
                                 "volume": np.full(bars, 1e6)}).iloc[:100])
    start = time.perf_counter()
    for c in close[100:]:
        stream.update(c * 1.005, c * 0.995, c, 1e6)
    return 1000.0 * (time.perf_counter() - start) / (bars - 100)


def benchmark_forecaster(
    batch: int = 32, seq: int = 128, d_model: int = 64, layers: int = 4, steps: int = 5,
    seed: int = RunConfig().seed, threads: int | None = None,
) -> dict[str, float | int | str | bool]:
    """Throughput and latency figures (see module docstring) on the CPU.

    ``threads`` sets torch's intra-op threads for the measurement (restored afterwards); on a
    2-core machine shared with other processes one thread is usually fastest.
    """
    rng = np.random.default_rng(seed)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or previous)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = DeepMamba(ModelConfig(n_features=len(FEATURE_NAMES), d_model=d_model, n_layers=layers,
                                          head_dim=32, chunk=32, lookback=seq))
        x = torch.as_tensor(rng.normal(size=(batch, seq, len(FEATURE_NAMES))), dtype=torch.float32)
        return {
            "config": f"{layers} layers, d_model {d_model}, d_state 16, expand 2, head_dim 32, chunk 32, "
                      f"batch {batch} x seq {seq}",
            "threads": torch.get_num_threads(),
            "train_tokens_per_s_chunked": round(_throughput(model, x, "torch", steps), 1),
            "train_tokens_per_s_sequential": round(_throughput(model, x, "sequential", max(1, steps // 2)), 1),
            "streaming_ms_per_bar": round(_streaming_ms(model, 600, rng), 3),
            "mamba_ssm_cuda": mamba_ssm_available(),
        }
    finally:
        torch.set_num_threads(previous)
