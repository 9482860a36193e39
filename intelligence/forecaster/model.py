"""DeepMamba: a stack of Mamba blocks (pre-RMSNorm, residual) with three forecast heads.

Block (``MambaMixer``, Mamba-2 style with a Mamba-1 output gate)::

    [z, xBC, dt_raw] = W_in · u
    xBC   = silu(causal_depthwise_conv(xBC))            kernel d_conv
    [x, B, C] = xBC
    dt    = softplus(dt_raw + dt_bias) + kappa / exp(A_log),  A = -exp(A_log)     (per head)
    y     = selective_scan(x, dt, A, B, C, D, z)        see scan.py
    out   = W_out · y

``kappa = -ln(memory_eps) / lookback`` floors the per-step log-decay at ``dt·|A| >= kappa``: what
a bar contributes to the state has shrunk below ``memory_eps`` after ``lookback`` bars, so the
model trained on ``lookback``-bar windows behaves the same when run recurrently over a whole
series (batch inference and the one-step streaming update).

Heads on the final RMSNorm output at each bar: next-bar log return (scaled), regime logits
(bull, bear, neutral) and the log of the mean squared return over the horizon (scaled).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import nn

from core.dto import ConfigError
from intelligence.forecaster.scan import scan_step, selective_scan


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Architecture of a DeepMamba forecaster (stored in every checkpoint)."""

    n_features: int
    d_model: int = 32
    n_layers: int = 2
    d_state: int = 16
    expand: int = 2
    head_dim: int = 16
    d_conv: int = 4
    lookback: int = 60
    memory_eps: float = 1e-3
    chunk: int = 32

    def __post_init__(self) -> None:
        for name in ("n_features", "d_model", "n_layers", "d_state", "expand", "head_dim", "d_conv", "chunk"):
            if getattr(self, name) < 1:
                raise ConfigError(f"forecaster {name}={getattr(self, name)} must be a positive integer")
        if self.d_conv < 2:
            raise ConfigError(f"forecaster d_conv={self.d_conv} must be at least 2")
        if self.lookback < 2:
            raise ConfigError(f"forecaster lookback={self.lookback} must be at least 2 bars")
        if (self.expand * self.d_model) % self.head_dim:
            raise ConfigError(
                f"forecaster expand*d_model={self.expand * self.d_model} must be a multiple of head_dim={self.head_dim}"
            )
        if not 0.0 < self.memory_eps < 1.0:
            raise ConfigError(f"forecaster memory_eps={self.memory_eps} must lie in (0, 1)")

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def n_heads(self) -> int:
        return self.d_inner // self.head_dim

    @property
    def decay_floor(self) -> float:
        """``kappa = -ln(memory_eps) / lookback``, the minimum per-step log-decay."""
        return -math.log(self.memory_eps) / self.lookback

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


class HeadOutputs(NamedTuple):
    """Raw head outputs: ``ret`` (…,), ``regime_logits`` (…, 3) bull/bear/neutral, ``log_var`` (…,)."""

    ret: torch.Tensor
    regime_logits: torch.Tensor
    log_var: torch.Tensor


class LayerState(NamedTuple):
    """Recurrent state of one block: last ``d_conv-1`` conv inputs and the scan state."""

    conv: torch.Tensor  # (b, conv_dim, d_conv - 1)
    ssm: torch.Tensor  # (b, H, P, N)


class MambaMixer(nn.Module):
    """One Mamba mixer; ``forward`` over a sequence, ``step`` for one bar."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.conv_dim = cfg.d_inner + 2 * cfg.d_state
        self.in_proj = nn.Linear(cfg.d_model, cfg.d_inner + self.conv_dim + cfg.n_heads, bias=False)
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, cfg.d_conv, groups=self.conv_dim, padding=cfg.d_conv - 1)
        dt0 = torch.exp(torch.linspace(math.log(1e-2), math.log(1e-1), cfg.n_heads))
        self.dt_bias = nn.Parameter(dt0 + torch.log(-torch.expm1(-dt0)))  # inverse softplus
        self.A_log = nn.Parameter(torch.log(torch.arange(1, cfg.n_heads + 1, dtype=torch.float32)))
        self.D = nn.Parameter(torch.ones(cfg.n_heads))
        self.out_proj = nn.Linear(cfg.d_inner, cfg.d_model, bias=False)

    def _split(self, zxbcdt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z, xbc, dt_raw = torch.split(zxbcdt, [self.cfg.d_inner, self.conv_dim, self.cfg.n_heads], dim=-1)
        return z, xbc, dt_raw

    def _dt_a(self, dt_raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``dt = softplus(dt_raw + dt_bias) + kappa·exp(-A_log)``, ``A = -exp(A_log)``."""
        dt = F.softplus(dt_raw + self.dt_bias) + self.cfg.decay_floor * torch.exp(-self.A_log)
        return dt, -torch.exp(self.A_log)

    def _xbc_split(self, xbc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        x, B, C = torch.split(xbc, [cfg.d_inner, cfg.d_state, cfg.d_state], dim=-1)
        return x.unflatten(-1, (cfg.n_heads, cfg.head_dim)), B, C

    def _causal_conv(self, xbc: torch.Tensor) -> torch.Tensor:
        """Depthwise causal convolution in (b, L, C) layout: ``y_t = bias + Σ_k w_k · x_{t−K+1+k}``
        (what ``conv1d`` with left padding K−1 computes, without transposes)."""
        k_size, length = self.cfg.d_conv, xbc.shape[1]
        padded = F.pad(xbc, (0, 0, k_size - 1, 0))
        weight, bias = self.conv1d.weight[:, 0, :], self.conv1d.bias  # (C, K), (C,)
        assert bias is not None  # conv1d is built with bias=True
        out = bias + padded[:, k_size - 1:] * weight[:, -1]
        for k in range(k_size - 1):
            out = out + padded[:, k:k + length] * weight[:, k]
        return out

    def forward(self, u: torch.Tensor, backend: str = "auto") -> tuple[torch.Tensor, LayerState]:
        """``u`` (b, L, d_model) → (b, L, d_model) and the state after the last bar."""
        cfg = self.cfg
        b, length, _ = u.shape
        z, xbc_in, dt_raw = self._split(self.in_proj(u))
        xbc = F.silu(self._causal_conv(xbc_in))
        x, B, C = self._xbc_split(xbc)
        dt, A = self._dt_a(dt_raw)
        y, ssm = selective_scan(x, dt, A, B, C, self.D, z.unflatten(-1, (cfg.n_heads, cfg.head_dim)),
                                chunk=cfg.chunk, backend=backend)
        tail = F.pad(xbc_in.transpose(1, 2), (cfg.d_conv - 1, 0))[..., -(cfg.d_conv - 1):]
        return self.out_proj(y.reshape(b, length, cfg.d_inner)), LayerState(tail, ssm)

    def step(self, u: torch.Tensor, state: LayerState) -> tuple[torch.Tensor, LayerState]:
        """One bar: ``u`` (b, d_model) → (b, d_model) and the updated state."""
        cfg = self.cfg
        z, xbc_in, dt_raw = self._split(self.in_proj(u))
        window = torch.cat([state.conv, xbc_in[..., None]], dim=-1)  # oldest → newest
        bias = self.conv1d.bias
        assert bias is not None  # conv1d is built with bias=True
        xbc = F.silu((window * self.conv1d.weight[:, 0, :]).sum(-1) + bias)
        x, B, C = self._xbc_split(xbc)
        dt, A = self._dt_a(dt_raw)
        y, ssm = scan_step(state.ssm, x, dt, A, B, C, self.D, z.unflatten(-1, (cfg.n_heads, cfg.head_dim)))
        return self.out_proj(y.reshape(u.shape[0], cfg.d_inner)), LayerState(window[..., 1:], ssm)

    def empty_state(self, batch: int, like: torch.Tensor) -> LayerState:
        cfg = self.cfg
        return LayerState(
            like.new_zeros(batch, self.conv_dim, cfg.d_conv - 1),
            like.new_zeros(batch, cfg.n_heads, cfg.head_dim, cfg.d_state),
        )


class MambaBlock(nn.Module):
    """``h + mixer(RMSNorm(h))``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.norm = nn.RMSNorm(cfg.d_model, eps=1e-5)
        self.mixer = MambaMixer(cfg)

    def forward(self, h: torch.Tensor, backend: str = "auto") -> tuple[torch.Tensor, LayerState]:
        out, state = self.mixer(self.norm(h), backend)
        return h + out, state

    def step(self, h: torch.Tensor, state: LayerState) -> tuple[torch.Tensor, LayerState]:
        out, state = self.mixer.step(self.norm(h), state)
        return h + out, state


class DeepMamba(nn.Module):
    """Embedding → ``n_layers`` Mamba blocks → RMSNorm → return / regime / volatility heads."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Linear(cfg.n_features, cfg.d_model)
        self.layers = nn.ModuleList(MambaBlock(cfg) for _ in range(cfg.n_layers))
        self.norm_f = nn.RMSNorm(cfg.d_model, eps=1e-5)
        self.head_return = nn.Linear(cfg.d_model, 1)
        self.head_regime = nn.Linear(cfg.d_model, 3)
        self.head_vol = nn.Linear(cfg.d_model, 1)

    def _heads(self, h: torch.Tensor) -> HeadOutputs:
        h = self.norm_f(h)
        return HeadOutputs(self.head_return(h)[..., 0], self.head_regime(h), self.head_vol(h)[..., 0])

    def forward_with_state(self, x: torch.Tensor, backend: str = "auto") -> tuple[HeadOutputs, list[LayerState]]:
        """``x`` (b, L, n_features) → heads at every bar and the per-layer state after the last bar."""
        h = self.embed(x)
        states = []
        for layer in self.layers:
            h, st = layer(h, backend)
            states.append(st)
        return self._heads(h), states

    def forward(self, x: torch.Tensor, last_only: bool = False, backend: str = "auto") -> HeadOutputs:
        heads, _ = self.forward_with_state(x, backend)
        if last_only:
            return HeadOutputs(*(t[:, -1] for t in heads))
        return heads

    def _blocks(self) -> list[MambaBlock]:
        """``self.layers`` typed as the blocks it holds (``nn.ModuleList`` iterates as ``nn.Module``)."""
        return [cast(MambaBlock, layer) for layer in self.layers]

    def empty_state(self, batch: int = 1) -> list[LayerState]:
        like = self.embed.weight
        return [block.mixer.empty_state(batch, like) for block in self._blocks()]

    def step(self, x: torch.Tensor, states: list[LayerState]) -> tuple[HeadOutputs, list[LayerState]]:
        """One bar ``x`` (b, n_features) through every layer's recurrent update."""
        h = self.embed(x)
        new_states = []
        for block, st in zip(self._blocks(), states, strict=True):
            h, st = block.step(h, st)
            new_states.append(st)
        return self._heads(h), new_states
