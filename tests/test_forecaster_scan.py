"""Selective scan: chunked (SSD) form vs the literal recurrence, the mamba-ssm glue, backend fallback."""

from __future__ import annotations

import sys
import types

import pytest
import torch
import torch.nn.functional as F

from core.dto import ConfigError
from intelligence.forecaster import scan
from intelligence.forecaster.model import DeepMamba, ModelConfig


def _inputs(b: int, length: int, h: int, p: int, n: int, seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, length, h, p, generator=g, dtype=dtype)
    dt = torch.rand(b, length, h, generator=g, dtype=dtype) * 0.6 + 0.01
    A = -(torch.rand(h, generator=g, dtype=dtype) * 3.0 + 0.05)
    B = torch.randn(b, length, n, generator=g, dtype=dtype)
    C = torch.randn(b, length, n, generator=g, dtype=dtype)
    D = torch.randn(h, generator=g, dtype=dtype)
    z = torch.randn(b, length, h, p, generator=g, dtype=dtype)
    s0 = torch.randn(b, h, p, n, generator=g, dtype=dtype)
    return [t.requires_grad_() for t in (x, dt, A, B, C, D, z, s0)]


@pytest.mark.parametrize(
    ("length", "chunk", "with_state"), [(37, 8, True), (64, 16, False), (5, 32, True), (1, 4, False)]
)
def test_chunked_equals_sequential_forward_and_gradients_float64(length: int, chunk: int, with_state: bool) -> None:
    x, dt, A, B, C, D, z, s0 = _inputs(2, length, 3, 4, 5)
    init = s0 if with_state else None
    y_ref, s_ref = scan.scan_sequential(x, dt, A, B, C, D, z, init)
    y, s = scan.scan_chunked(x, dt, A, B, C, D, z, init, chunk=chunk)
    assert torch.allclose(y, y_ref, rtol=0, atol=1e-10)
    assert torch.allclose(s, s_ref, rtol=0, atol=1e-10)
    wy, ws = torch.randn_like(y_ref), torch.randn_like(s_ref)
    leaves = [x, dt, A, B, C, D, z] + ([s0] if with_state else [])
    g_ref = torch.autograd.grad((y_ref * wy).sum() + (s_ref * ws).sum(), leaves)
    g = torch.autograd.grad((y * wy).sum() + (s * ws).sum(), leaves)
    for a, b in zip(g, g_ref, strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-10)


def test_recurrence_hand_worked_single_channel() -> None:
    # one head, P = N = 1, A = -ln 2, dt = 1: S_t = S_{t-1}/2 + x_t B_t, y_t = C_t S_t + D x_t
    x = torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64).view(1, 3, 1, 1)
    dt = torch.ones(1, 3, 1, dtype=torch.float64)
    A = torch.tensor([-torch.log(torch.tensor(2.0, dtype=torch.float64))])
    B = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64).view(1, 3, 1)
    C = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64).view(1, 3, 1)
    D = torch.tensor([0.5], dtype=torch.float64)
    y, s = scan.scan_chunked(x, dt, A, B, C, D, chunk=2)
    # S = 1, 2.5, 1.25 ; y = 1 + 0.5, 5 + 1, 5 + 0
    assert y.flatten().tolist() == pytest.approx([1.5, 6.0, 5.0], abs=1e-12)
    assert float(s) == pytest.approx(1.25, abs=1e-12)


def _mamba_reference_scan_fn(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                             return_last_state=False):
    """mamba-ssm's documented selective_scan semantics (channel layout (b, D, L), A (D, N), B/C (b, N, L))."""
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    state = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    ys = []
    for i in range(u.shape[2]):
        d = delta[:, :, i, None]
        state = torch.exp(d * A) * state + d * B[:, None, :, i] * u[:, :, i, None]
        ys.append((state * C[:, None, :, i]).sum(-1))
    out = torch.stack(ys, dim=2)
    if D is not None:
        out = out + u * D[:, None]
    if z is not None:
        out = out * F.silu(z)
    return (out, state) if return_last_state else out


def test_mamba_ssm_glue_maps_heads_to_channels() -> None:
    x, dt, A, B, C, D, z, _ = _inputs(2, 19, 3, 4, 5, seed=3)
    y_ref, s_ref = scan.scan_chunked(x, dt, A, B, C, D, z, chunk=8)
    y, s = scan.scan_mamba_ssm(x, dt, A, B, C, D, z, scan_fn=_mamba_reference_scan_fn)
    assert torch.allclose(y, y_ref, atol=1e-10)
    assert torch.allclose(s, s_ref, atol=1e-10)


def test_broken_mamba_ssm_import_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    # mamba-ssm 2.3.x without CUDA: the package exists but importing its ops raises ImportError
    broken = types.ModuleType("mamba_ssm.ops.selective_scan_interface")
    broken.__getattr__ = lambda name: (_ for _ in ()).throw(ImportError("libcudart.so.12: cannot open"))
    monkeypatch.setitem(sys.modules, "mamba_ssm", types.ModuleType("mamba_ssm"))
    monkeypatch.setitem(sys.modules, "mamba_ssm.ops", types.ModuleType("mamba_ssm.ops"))
    monkeypatch.setitem(sys.modules, "mamba_ssm.ops.selective_scan_interface", broken)
    scan._mamba_ssm_scan_fn.cache_clear()
    try:
        assert scan._mamba_ssm_scan_fn() is None
        assert scan.mamba_ssm_available() is False
        x, dt, A, B, C, D, z, _ = _inputs(1, 10, 2, 2, 3)
        y_auto, _ = scan.selective_scan(x, dt, A, B, C, D, z, backend="auto")
        y_torch, _ = scan.scan_chunked(x, dt, A, B, C, D, z)
        assert torch.equal(y_auto, y_torch)
        with pytest.raises(ConfigError, match="mamba-ssm is not importable"):
            scan.selective_scan(x, dt, A, B, C, D, z, backend="cuda")
    finally:
        scan._mamba_ssm_scan_fn.cache_clear()


def test_unknown_backend_is_a_config_error() -> None:
    x, dt, A, B, C, D, z, _ = _inputs(1, 4, 1, 1, 1)
    with pytest.raises(ConfigError, match="unknown"):
        scan.selective_scan(x, dt, A, B, C, D, z, backend="triton")


def test_model_backends_share_parameters_and_numbers() -> None:
    torch.manual_seed(0)
    model = DeepMamba(ModelConfig(n_features=3, d_model=8, n_layers=2, d_state=4, head_dim=8, lookback=10)).double()
    names = {k for k in model.state_dict() if k.startswith("layers.0.mixer.")}
    assert names == {f"layers.0.mixer.{k}" for k in ("in_proj.weight", "conv1d.weight", "conv1d.bias", "dt_bias",
                                                     "A_log", "D", "out_proj.weight")}
    x = torch.randn(2, 25, 3, dtype=torch.float64)
    fast, seq = model(x, backend="torch"), model(x, backend="sequential")
    for a, b in zip(fast, seq, strict=True):
        assert torch.allclose(a, b, atol=1e-10)
    heads, _ = model.forward_with_state(x)
    states = model.empty_state(2)
    for t in range(25):
        step, states = model.step(x[:, t], states)
    assert torch.allclose(step.ret, heads.ret[:, -1], atol=1e-10)


def test_decay_floor_bounds_memory_to_lookback() -> None:
    cfg = ModelConfig(n_features=2, d_model=8, n_layers=1, head_dim=8, lookback=50, memory_eps=1e-3)
    mixer = DeepMamba(cfg).layers[0].mixer
    dt, A = mixer._dt_a(torch.full((1, 1, cfg.n_heads), -30.0))  # softplus term ~ 0: slowest possible decay
    assert torch.all(torch.exp(dt * A) ** cfg.lookback <= 1e-3 + 1e-9)
