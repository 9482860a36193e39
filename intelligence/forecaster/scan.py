"""Selective scan (the state-space recurrence inside a Mamba block), three ways, same numbers.

Recurrence, per head ``h`` with head dimension ``P`` and state size ``N`` (scalar decay per head,
as in Mamba-2; a special case of the Mamba-1 scan with ``A[d, n] = A[h(d)]``)::

    S_t = exp(dt_t * A) * S_{t-1} + dt_t * x_t ⊗ B_t          S_t: (P, N)
    y_t = S_t · C_t + D * x_t
    y_t = y_t * silu(z_t)                                        (when a gate z is given)

Shapes: ``x, z`` (batch, L, H, P); ``dt`` (batch, L, H) positive; ``A`` (H,) negative;
``B, C`` (batch, L, N); ``D`` (H,); states (batch, H, P, N).

* :func:`scan_sequential` — the literal recurrence, a Python loop over time (reference, tests).
* :func:`scan_chunked` — the chunked "state-space duality" form: quadratic attention-like
  products inside chunks of ``T`` steps, a recurrence only between chunks.  This is the
  training path on CPU and the fallback everywhere.
* :func:`scan_mamba_ssm` — ``mamba_ssm.ops.selective_scan_interface.selective_scan_fn``
  (CUDA kernel) with the head parameters broadcast to channels.

``selective_scan(..., backend="auto")`` picks the CUDA kernel when mamba-ssm imports and the
tensors are on a GPU, else the chunked PyTorch form.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F

from core.dto import ConfigError

#: mamba-ssm's ``selective_scan_fn`` called with ``return_last_state=True``: ``(y, last_state)``.
ScanFn = Callable[..., tuple[torch.Tensor, torch.Tensor]]

BACKENDS = ("auto", "torch", "cuda", "sequential")


def _gate(y: torch.Tensor, x: torch.Tensor, D: torch.Tensor | None, z: torch.Tensor | None) -> torch.Tensor:
    """``(y + D x) * silu(z)``."""
    if D is not None:
        y = y + D[:, None] * x
    if z is not None:
        y = y * F.silu(z)
    return y


def scan_step(
    state: torch.Tensor, x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
    D: torch.Tensor | None = None, z: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of the recurrence. ``state`` (b, H, P, N), ``x, z`` (b, H, P), ``dt`` (b, H), ``B, C`` (b, N).

    Returns ``(y_t, S_t)``.
    """
    decay = torch.exp(dt * A)[..., None, None]
    state = state * decay + (dt[..., None] * x)[..., None] * B[:, None, None, :]
    y = (state * C[:, None, None, :]).sum(-1)
    return _gate(y, x, D, z), state


def scan_sequential(
    x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
    D: torch.Tensor | None = None, z: torch.Tensor | None = None, initial_state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Naive recurrence, one Python iteration per time step. Returns ``(y, final_state)``."""
    b, length, h, p = x.shape
    state = initial_state if initial_state is not None else x.new_zeros(b, h, p, B.shape[-1])
    ys = []
    for t in range(length):
        y_t, state = scan_step(
            state, x[:, t], dt[:, t], A, B[:, t], C[:, t], D, None if z is None else z[:, t]
        )
        ys.append(y_t)
    return torch.stack(ys, dim=1), state


def _chunk_states(
    xdt: torch.Tensor, acs: torch.Tensor, Bc: torch.Tensor, initial_state: torch.Tensor | None
) -> torch.Tensor:
    """States entering each chunk and the final state, ``(b, H, c + 1, N, P)``.

    ``s_end[k] = Σ_j exp(acs[k, T-1] - acs[k, j]) B_j ⊗ xdt_j`` is chunk k's own contribution;
    ``S_in[k] = Σ_{j<k} exp(Σ_{j<m<k} a_m) s_end[j] + exp(Σ_{m<k} a_m) S_0`` with ``a_m`` the
    total log-decay of chunk m, evaluated as one (c+1) x (c+1) lower-triangular matrix product.
    """
    b, h, c, T, p = xdt.shape
    n = Bc.shape[-1]
    decay_to_end = torch.exp(acs[..., -1:] - acs)  # (b, h, c, T)
    s_end = (Bc[:, None] * decay_to_end[..., None]).transpose(-1, -2) @ xdt  # (b, h, c, N, P)
    s0 = xdt.new_zeros(b, h, 1, n, p) if initial_state is None else initial_state.transpose(-1, -2)[:, :, None]
    stacked = torch.cat([s0, s_end], dim=2)  # (b, h, c + 1, N, P)
    chunk_log_decay = F.pad(acs[..., -1], (1, 0))  # (b, h, c + 1)
    cum = torch.cumsum(chunk_log_decay, dim=-1)
    seg = cum[..., :, None] - cum[..., None, :]
    mask = torch.ones(c + 1, c + 1, dtype=torch.bool, device=xdt.device).tril()
    weights = torch.exp(seg.masked_fill(~mask, float("-inf")))  # (b, h, c + 1, c + 1)
    return (weights @ stacked.flatten(-2)).view(b, h, c + 1, n, p)


def scan_chunked(
    x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
    D: torch.Tensor | None = None, z: torch.Tensor | None = None, initial_state: torch.Tensor | None = None,
    chunk: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunked (SSD) evaluation of the recurrence; same result as :func:`scan_sequential`.

    Within a chunk, ``y_i = Σ_{j≤i} (C_i·B_j) exp(acs_i − acs_j) dt_j x_j + C_i·S_in exp(acs_i)``
    with ``acs`` the cumulative log-decay ``Σ dt·A`` inside the chunk. Padding to a multiple of
    the chunk uses ``dt = 0`` (decay 1, no input), so the final state is exact.
    Returns ``(y, final_state)``.
    """
    b, length, h, p = x.shape
    n = B.shape[-1]
    T = max(1, min(chunk, length))
    pad = (-length) % T
    xdt = x * dt[..., None]
    if pad:
        xdt = F.pad(xdt, (0, 0, 0, 0, 0, pad))
        dt_p, B_p, C_p = F.pad(dt, (0, 0, 0, pad)), F.pad(B, (0, 0, 0, pad)), F.pad(C, (0, 0, 0, pad))
    else:
        dt_p, B_p, C_p = dt, B, C
    c = (length + pad) // T
    acs = torch.cumsum((dt_p * A).view(b, c, T, h).permute(0, 3, 1, 2), dim=-1)  # (b, h, c, T)
    xdt = xdt.view(b, c, T, h, p).permute(0, 3, 1, 2, 4)  # (b, h, c, T, P)
    Bc, Cc = B_p.view(b, c, T, n), C_p.view(b, c, T, n)
    mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
    seg = (acs[..., :, None] - acs[..., None, :]).masked_fill(~mask, float("-inf"))
    scores = (Cc @ Bc.transpose(-1, -2))[:, None] * torch.exp(seg)  # (b, h, c, T, T)
    y = scores @ xdt
    states = _chunk_states(xdt, acs, Bc, initial_state)
    y = y + (Cc[:, None] @ states[:, :, :-1]) * torch.exp(acs)[..., None]
    y = y.permute(0, 2, 3, 1, 4).reshape(b, c * T, h, p)[:, :length]
    final_state = states[:, :, -1].transpose(-1, -2)
    return _gate(y, x, D, z), final_state


@functools.cache
def _mamba_ssm_scan_fn() -> ScanFn | None:
    """``selective_scan_fn`` from mamba-ssm, or None when it cannot be imported.

    mamba-ssm 2.3.x installs without CUDA but imports its compiled extension
    (``selective_scan_cuda``) at module import, which then raises ImportError / OSError.
    """
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except (ImportError, OSError, RuntimeError):
        return None
    return selective_scan_fn


def mamba_ssm_available() -> bool:
    """True when mamba-ssm's CUDA selective scan imports and a CUDA device is present."""
    return torch.cuda.is_available() and _mamba_ssm_scan_fn() is not None


def scan_mamba_ssm(
    x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
    D: torch.Tensor | None = None, z: torch.Tensor | None = None, scan_fn: ScanFn | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The recurrence through mamba-ssm's ``selective_scan_fn(u, delta, A, B, C, D, z, delta_bias,
    delta_softplus, return_last_state)`` with channel layout ``(batch, H*P, L)``.

    Head parameters are repeated over the ``P`` channels of their head (``A`` to ``(H*P, N)``,
    ``dt`` to ``(batch, H*P, L)``); ``dt`` is already positive, so ``delta_softplus=False``.
    """
    fn = scan_fn if scan_fn is not None else _mamba_ssm_scan_fn()
    if fn is None:
        raise ConfigError("scan backend 'cuda': mamba-ssm is not importable; install the [gpu] extra or use 'torch'")
    b, length, h, p = x.shape
    n = B.shape[-1]
    u = x.reshape(b, length, h * p).transpose(1, 2).contiguous()
    delta = dt.repeat_interleave(p, dim=-1).transpose(1, 2).contiguous()
    a_full = A.repeat_interleave(p)[:, None].expand(h * p, n).contiguous()
    d_full = None if D is None else D.repeat_interleave(p).contiguous()
    z_full = None if z is None else z.reshape(b, length, h * p).transpose(1, 2).contiguous()
    out, last = fn(  # mamba-ssm returns (out, last_state) with return_last_state=True
        u, delta, a_full, B.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous(),
        d_full, z_full, None, False, True,
    )
    y = out.transpose(1, 2).reshape(b, length, h, p)
    return y, last.reshape(b, h, p, n)


def selective_scan(
    x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
    D: torch.Tensor | None = None, z: torch.Tensor | None = None, initial_state: torch.Tensor | None = None,
    chunk: int = 64, backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dispatch to a backend (see module docstring). Returns ``(y, final_state)``."""
    if backend not in BACKENDS:
        raise ConfigError(f"scan backend {backend!r} is unknown; use one of {', '.join(BACKENDS)}")
    if backend == "sequential":
        return scan_sequential(x, dt, A, B, C, D, z, initial_state)
    use_cuda = backend == "cuda" or (
        backend == "auto" and x.is_cuda and initial_state is None and mamba_ssm_available()
    )
    if use_cuda:
        if initial_state is not None:
            raise ConfigError("scan backend 'cuda' cannot start from a given state; use backend 'torch'")
        return scan_mamba_ssm(x, dt, A, B, C, D, z)
    return scan_chunked(x, dt, A, B, C, D, z, initial_state, chunk)
