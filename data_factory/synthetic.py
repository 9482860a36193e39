"""Synthetic market: seeded stochastic volatility + jumps + regime switches on the NYSE calendar.

Daily model (session step Δ = 1/252 year; regime s ∈ {0 calm, 1 stress}):

* Regime: Markov chain, P(calm→stress) = p_cs, P(stress→calm) = p_sc per session.
* Variance (Heston, Euler, floored): ``v_t = max(v_{t-1} + κ(θ_s - v_{t-1})Δ + ξ_s·sqrt(v_{t-1}Δ)·Z_v, v_min)``.
* Jumps (Merton): ``N_t ~ Poisson(λ_s Δ)``, ``J_t = N_t μ_J + sqrt(N_t) σ_J Z_J``,
  compensator ``k̄ = exp(μ_J + σ_J²/2) - 1``.
* Log return split into an overnight gap and the session move (share w of the diffusion
  overnight; jumps land overnight):
  ``g_t = w·m_t + sqrt(w v Δ) Z_g + J_t``,  ``i_t = (1-w)·m_t + sqrt((1-w) v Δ) Z_i``,
  drift ``m_t = (μ_s - v/2 - λ_s k̄)Δ``, leverage ``Z_i = ρ Z_v + sqrt(1-ρ²) Z_⊥``;
  open = prev close·e^g, close = open·e^i.
* High/low: the exact maximum / minimum of a Brownian bridge from 0 to b = i_t with variance
  s² = (1-w)vΔ: ``M = (b + sqrt(b² - 2s² ln U))/2``, ``m = (b - sqrt(b² - 2s² ln U'))/2``.
* VIX-like (model-generated): ``100·sqrt(θ_s + (v_t - θ_s)(1 - e^{-κτ})/(κτ) + λ_s(μ_J² + σ_J²))
  + premium``, τ = 30/365, using end-of-day v_t (causal).
* Volume: ``base·sqrt(v_t/θ_calm)·exp(0.25z - 0.03125)`` whole shares.

Intraday bars come from the same seeded bridge as the embedded market.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import poisson

from core.dto import DataError
from data_factory.bars import slice_dates
from data_factory.base import BAR_COLUMNS, DEFAULTS, ChainSource, SourceInfo
from data_factory.bridge import bridge_intraday, prior_variance
from data_factory.calendar import DateLike, sessions
from data_factory.surface import SurfaceParams

STEP_YEARS = 1.0 / 252.0
VIX_TAU_YEARS = 30.0 / 365.0


@dataclass(frozen=True, slots=True)
class RegimeParams:
    """Per-regime drift (per year), long-run variance θ, vol-of-vol ξ and jump intensity λ (per year)."""

    drift: float
    long_run_var: float
    vol_of_vol: float
    jump_intensity: float


@dataclass(frozen=True, slots=True)
class SyntheticParams:
    """Model parameters; defaults give ~14% vol calm and ~30% vol stress regimes."""

    calm: RegimeParams = field(default_factory=lambda: RegimeParams(0.10, 0.018, 0.40, 1.0))
    stress: RegimeParams = field(default_factory=lambda: RegimeParams(-0.20, 0.09, 0.90, 10.0))
    mean_reversion: float = 5.0  # κ per year
    leverage_corr: float = -0.7  # ρ between Z_v and the session move
    var_floor: float = 1e-4  # v_min (1% annual vol)
    p_calm_to_stress: float = 1.0 / 200.0
    p_stress_to_calm: float = 1.0 / 30.0
    jump_mean: float = -0.025  # μ_J (log)
    jump_sd: float = 0.03  # σ_J
    overnight_share: float = 0.2  # w
    vix_premium_points: float = 2.0
    base_volume: float = 8.0e7


def _regime_path(p: SyntheticParams, u: np.ndarray) -> np.ndarray:
    """Markov chain starting calm; ``u`` are uniforms, one per session."""
    switch = (p.p_calm_to_stress, p.p_stress_to_calm)
    state, out = 0, np.empty(len(u), dtype=np.int8)
    for t, draw in enumerate(u.tolist()):
        if draw < switch[state]:
            state = 1 - state
        out[t] = state
    return out


def _variance_path(p: SyntheticParams, regime: np.ndarray, z_v: np.ndarray) -> np.ndarray:
    """End-of-session variances v_1..v_T from v_0 = θ_calm (Euler step, floored at v_min)."""
    theta = np.where(regime == 1, p.stress.long_run_var, p.calm.long_run_var).tolist()
    xi = np.where(regime == 1, p.stress.vol_of_vol, p.calm.vol_of_vol).tolist()
    kappa, floor, step = p.mean_reversion, p.var_floor, STEP_YEARS
    v, out = p.calm.long_run_var, np.empty(len(regime))
    for t, z in enumerate(z_v.tolist()):
        v = max(v + kappa * (theta[t] - v) * step + xi[t] * (v * step) ** 0.5 * z, floor)
        out[t] = v
    return out


def _model_vix(p: SyntheticParams, stress: np.ndarray, v_end: np.ndarray) -> np.ndarray:
    """``100·sqrt(θ_s + (v_t - θ_s)(1 - e^{-κτ})/(κτ) + λ_s(μ_J² + σ_J²)) + premium`` per session."""
    theta = np.where(stress, p.stress.long_run_var, p.calm.long_run_var)
    lam = np.where(stress, p.stress.jump_intensity, p.calm.jump_intensity)
    decay = (1.0 - np.exp(-p.mean_reversion * VIX_TAU_YEARS)) / (p.mean_reversion * VIX_TAU_YEARS)
    expected_var = theta + (v_end - theta) * decay + lam * (p.jump_mean**2 + p.jump_sd**2)
    return 100.0 * np.sqrt(expected_var) + p.vix_premium_points


def _bridge_extremes(
    move: np.ndarray, s2: np.ndarray, u_high: np.ndarray, u_low: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Max and min (log, from the open) of a Brownian bridge 0 -> ``move`` with variance ``s2``."""
    up = 0.5 * (move + np.sqrt(move**2 - 2.0 * s2 * np.log(u_high)))
    down = 0.5 * (move - np.sqrt(move**2 - 2.0 * s2 * np.log(u_low)))
    return up, down


def simulate_daily(
    days: pd.DatetimeIndex, s0: float, seed: int, p: SyntheticParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(daily OHLCV, state frame with ``regime, variance, jump_count, jump, vix``) for ``days``."""
    rng = np.random.default_rng(int(seed))
    z = rng.standard_normal((6, len(days)))  # Z_v, Z_perp, Z_g, Z_J, volume, spare
    u = rng.random((4, len(days)))  # regime, jump count, high, low
    regime = _regime_path(p, u[0])
    stress = regime == 1
    lam = np.where(stress, p.stress.jump_intensity, p.calm.jump_intensity)
    mu = np.where(stress, p.stress.drift, p.calm.drift)
    v_end = _variance_path(p, regime, z[0])
    v_start = np.r_[p.calm.long_run_var, v_end[:-1]]
    counts = poisson.ppf(u[1], lam * STEP_YEARS).astype(np.int64)
    jumps = counts * p.jump_mean + np.sqrt(counts) * p.jump_sd * z[3]
    k_bar = np.exp(p.jump_mean + 0.5 * p.jump_sd**2) - 1.0
    w = p.overnight_share
    drift = (mu - 0.5 * v_start - lam * k_bar) * STEP_YEARS
    z_i = p.leverage_corr * z[0] + np.sqrt(1.0 - p.leverage_corr**2) * z[1]
    gap = w * drift + np.sqrt(w * v_start * STEP_YEARS) * z[2] + jumps
    s2 = (1.0 - w) * v_start * STEP_YEARS
    move = (1.0 - w) * drift + np.sqrt(s2) * z_i
    close = s0 * np.exp(np.cumsum(gap + move))
    open_ = np.r_[s0, close[:-1]] * np.exp(gap)
    up, down = _bridge_extremes(move, s2, u[2], u[3])
    high = np.maximum(open_ * np.exp(up), np.maximum(open_, close))
    low = np.minimum(open_ * np.exp(down), np.minimum(open_, close))
    volume = np.rint(p.base_volume * np.sqrt(v_end / p.calm.long_run_var) * np.exp(0.25 * z[4] - 0.03125))
    index = pd.DatetimeIndex(days, name="date")
    daily = pd.DataFrame(dict(zip(BAR_COLUMNS, (open_, high, low, close, volume), strict=True)), index=index)
    vix = _model_vix(p, stress, v_end)
    state = pd.DataFrame(
        {"regime": regime, "variance": v_end, "jump_count": counts, "jump": jumps, "vix": vix}, index=index
    )
    return daily, state


class SyntheticMarket:
    """``MarketSource`` for any NYSE date range from the seeded model in the module doc."""

    def __init__(
        self,
        start: DateLike,
        end: DateLike,
        seed: int = DEFAULTS.run.seed,
        underlying: str = DEFAULTS.strategy.underlying,
        s0: float = 250.0,
        params: SyntheticParams | None = None,
        surface: SurfaceParams | None = None,
    ) -> None:
        days = sessions(start, end)
        if len(days) < 2:
            raise DataError(f"synthetic range {start}..{end} holds fewer than 2 NYSE sessions; widen it")
        if not s0 > 0:
            raise DataError(f"synthetic start price s0={s0} must be positive")
        self.seed = int(seed)
        self.underlying = underlying
        self.params = params or SyntheticParams()
        self.surface = surface  # rates, dividend yield and smile of the modelled chains
        self._daily, self._state = simulate_daily(days, s0, self.seed, self.params)
        self.info = SourceInfo(
            name="synthetic",
            underlying=underlying,
            first_date=days[0].date(),
            last_date=days[-1].date(),
            intraday_synthetic=True,
            vix_proxy_until=None,
            chains_modelled=True,
            notes=(
                f"seeded Heston + Merton jumps + 2-state regime model, seed {self.seed}, s0 {s0:g}",
                "VIX is model-generated from the simulated variance (30-day expectation + premium),"
                " not a proxy of a real index",
                "intraday bars synthesised by the seeded bridge that reproduces each day's OHLCV",
            ),
        )

    @property
    def regimes(self) -> pd.Series:
        """Regime per session: 0 calm, 1 stress."""
        return self._state["regime"].copy()

    @property
    def state(self) -> pd.DataFrame:
        """Latent path per session: ``regime, variance, jump_count, jump`` (log jump size), ``vix``."""
        return self._state.copy()

    def _slice(self, frame: pd.DataFrame, start: DateLike | None, end: DateLike | None) -> pd.DataFrame:
        return slice_dates(frame, start, end, "synthetic market", "build it with a wider start/end")

    def daily_bars(self, start: DateLike | None = None, end: DateLike | None = None) -> pd.DataFrame:
        """Daily OHLCV (index ``date``)."""
        return self._slice(self._daily, start, end)

    def intraday_bars(self, start: DateLike, end: DateLike, minutes: int = 5) -> pd.DataFrame:
        """Close-labelled ``minutes`` bars (tz New York) from the seeded bridge over ``daily_bars``."""
        return bridge_intraday(self.daily_bars(start, end), self.seed, minutes, prior_variance(self._daily))

    def vix(self, start: DateLike | None = None, end: DateLike | None = None) -> pd.DataFrame:
        """Model VIX (points) with ``is_proxy`` False (model-generated, see ``info.notes``)."""
        frame = pd.DataFrame({"vix": self._state["vix"], "is_proxy": False}, index=self._state.index)
        return self._slice(frame, start, end)

    def chains(self, bars: pd.DataFrame) -> ChainSource:
        """Modelled option chains whose spot is ``bars['close']`` and whose ATM level follows the model VIX."""
        from data_factory.chains import ModelChainSource

        return ModelChainSource(spot=bars["close"], vix=self.vix(), underlying=self.underlying, params=self.surface)
