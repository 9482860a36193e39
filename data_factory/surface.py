"""Implied-volatility surface for modelled SPY chains, anchored on VIX.

The surface is an SSVI surface (Gatheral & Jacquier 2014, "Arbitrage-free SVI volatility
surfaces") in forward log-moneyness ``k = ln(K/F)``:

    w(k, tau) = theta/2 * (1 + rho*phi*k + sqrt((phi*k + rho)^2 + 1 - rho^2)),   sigma = sqrt(w / tau)
    phi(theta) = eta / (theta^gamma * (1 + theta)^(1 - gamma))

* ``theta = tau * atm(tau)^2`` is the ATM total variance.  Term structure: the ATM variance is
  the expected average of a mean-reverting variance (speed ``kappa``, long-run ``vbar``):

      atm(tau)^2 = vbar + (v0 - vbar) * (1 - e^{-kappa tau}) / (kappa tau)

  with ``v0`` solved so that ``atm(30/365)`` equals the 30-day ATM vol; short expiries are
  therefore more extreme than the 30-day level, long ones closer to ``vbar``.
  ``v0 >= min_vol^2`` (the vol floor), which keeps ``theta`` increasing in ``tau``.
* Put skew: with ``gamma = 1/2`` the ATM skew is ``d sigma / dk ~= rho*eta / (2 sqrt(tau))``,
  i.e. a constant slope ``skew_slope = -rho*eta/2`` in standardised moneyness ``k/sqrt(tau)``.
* Smaller call wing: the wings are asymptotically linear in ``|k|`` with slopes proportional
  to ``1 - rho`` (puts) and ``1 + rho`` (calls); ``call_wing_factor = (1 + rho)/(1 - rho)``.
* No static arbitrage: ``theta`` non-decreasing in ``tau`` (calendar), ``gamma`` in (0, 1/2] and
  ``eta (1 + |rho|) <= 2`` (butterfly; G&J Remark 4.4 / Theorem 4.2) - validated below.

VIX is a 30-day variance-swap level: ``(VIX/100)^2 * tau30 = 2 * int O(k) e^{-k} dk`` with
``O`` the forward-normalised out-of-the-money Black price.  ``atm_from_vix`` inverts that
integral on the surface's own 30-day smile (a table per ``SurfaceParams``), so the ATM 30-day
vol is VIX/100 minus the smile's convexity adjustment (about 2.5 vol points at VIX 15, 5 at VIX 30).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr

from core.dto import ConfigError
from data_factory.base import DEFAULTS

TAU_30D = 30.0 / 365.0
MIN_TAU = 1e-6  # ~30 seconds in years; shorter times are priced at this horizon


@dataclass(frozen=True, slots=True)
class SurfaceParams:
    """Parameters of the modelled SPY surface (rates continuously compounded, vols annualised).

    ``rate`` 2% and ``dividend_yield`` 1.8% (SPY's yield sits in 1.3-2%; both default to config
    ``data.rate`` / ``data.dividend_yield``); ``long_run_vol`` and
    ``mean_reversion`` set the term-structure slope; ``skew_slope``, ``call_wing_factor`` and
    ``smile_power`` the smile (see module docstring); ``min_vol`` floors the ATM vol.
    """

    rate: float = DEFAULTS.data.rate
    dividend_yield: float = DEFAULTS.data.dividend_yield
    long_run_vol: float = 0.20
    mean_reversion: float = 1.5
    skew_slope: float = 0.32
    call_wing_factor: float = 0.25
    smile_power: float = 0.5
    min_vol: float = 0.04

    def __post_init__(self) -> None:
        checks = (
            (-0.05 <= self.rate <= 0.25, "rate", "[-0.05, 0.25]"),
            (0.0 <= self.dividend_yield <= 0.10, "dividend_yield", "[0, 0.10] (SPY: 0.013-0.02)"),
            (0.01 <= self.long_run_vol <= 2.0, "long_run_vol", "[0.01, 2]"),
            (0.01 <= self.mean_reversion <= 50.0, "mean_reversion", "[0.01, 50]"),
            (0.0 <= self.skew_slope <= 1.0, "skew_slope", "[0, 1]"),
            (0.0 < self.call_wing_factor <= 1.0, "call_wing_factor", "(0, 1]"),
            (0.0 < self.smile_power <= 0.5, "smile_power", "(0, 0.5]"),
            (0.001 <= self.min_vol <= self.long_run_vol, "min_vol", "[0.001, long_run_vol]"),
        )
        for ok, name, allowed in checks:
            if not ok:
                raise ConfigError(f"surface {name}={getattr(self, name)} is outside {allowed}; choose a value in range")
        if self.eta * (1.0 + abs(self.rho)) > 2.0 + 1e-12:
            limit = abs(self.rho) / (1.0 + abs(self.rho))
            raise ConfigError(
                f"surface skew_slope={self.skew_slope} admits butterfly arbitrage with call_wing_factor="
                f"{self.call_wing_factor}; use skew_slope <= {limit:.3f} or a smaller call_wing_factor"
            )

    @property
    def rho(self) -> float:
        """SSVI correlation: ``rho = -(1 - f) / (1 + f)`` for call-wing factor ``f``."""
        return -(1.0 - self.call_wing_factor) / (1.0 + self.call_wing_factor)

    @property
    def eta(self) -> float:
        """SSVI level: ``eta = 2 * skew_slope / |rho|`` (the ATM skew is ``rho*eta/2`` per sqrt(tau))."""
        return 2.0 * self.skew_slope / abs(self.rho) if self.rho != 0.0 else 0.0


def atm_total_variance(tau: ArrayLike, atm_30d: ArrayLike, params: SurfaceParams) -> np.ndarray:
    """ATM total variance ``theta(tau) = vbar*tau + (v0 - vbar)(1 - e^{-kappa tau})/kappa``.

    ``v0 = max(min_vol^2, vbar + (atm_30d^2 - vbar) / f(tau30))`` with ``f(x) = (1 - e^{-kappa x})/(kappa x)``.
    """
    tau_ = np.maximum(np.asarray(tau, float), MIN_TAU)
    kappa, vbar = params.mean_reversion, params.long_run_vol**2
    f30 = -np.expm1(-kappa * TAU_30D) / (kappa * TAU_30D)
    v0 = np.maximum(params.min_vol**2, vbar + (np.asarray(atm_30d, float) ** 2 - vbar) / f30)
    return vbar * tau_ - (v0 - vbar) * np.expm1(-kappa * tau_) / kappa


def ssvi_total_variance(k: ArrayLike, theta: ArrayLike, params: SurfaceParams) -> np.ndarray:
    """SSVI slice ``w(k) = theta/2 (1 + rho phi k + sqrt((phi k + rho)^2 + 1 - rho^2))``."""
    k_, th = np.asarray(k, float), np.asarray(theta, float)
    rho, gamma = params.rho, params.smile_power
    phi = params.eta / (th**gamma * (1.0 + th) ** (1.0 - gamma))
    pk = phi * k_
    return 0.5 * th * (1.0 + rho * pk + np.sqrt((pk + rho) ** 2 + 1.0 - rho * rho))


def implied_vol(k: ArrayLike, tau: ArrayLike, atm_30d: ArrayLike, params: SurfaceParams | None = None) -> np.ndarray:
    """Black implied vol at forward log-moneyness ``k = ln(K/F)`` and ``tau`` years (broadcasts).

    >>> round(float(implied_vol(0.0, 30 / 365, 0.15)), 6)
    0.15
    """
    p = params or DEFAULT_PARAMS
    tau_ = np.maximum(np.asarray(tau, float), MIN_TAU)
    theta = atm_total_variance(tau_, atm_30d, p)
    return np.sqrt(ssvi_total_variance(k, theta, p) / tau_)


def _otm_black_normalised(k: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Undiscounted OTM Black price over the forward: call for ``k >= 0``, put for ``k < 0``."""
    sw = np.sqrt(w)
    d1 = -k / sw + 0.5 * sw
    d2 = d1 - sw
    call = ndtr(d1) - np.exp(k) * ndtr(d2)
    put = np.exp(k) * ndtr(-d2) - ndtr(-d1)
    return np.where(k >= 0.0, call, put)


def variance_swap_vol(atm_30d: ArrayLike, params: SurfaceParams, tau: float = TAU_30D) -> np.ndarray:
    """Fair variance-swap vol of the ``tau`` smile: ``sqrt(2/tau * int O(k) e^{-k} dk)`` (trapezoid)."""
    atm = np.atleast_1d(np.asarray(atm_30d, float))[:, None]
    k = np.linspace(-6.0, 3.0, 6001)[None, :]
    theta = atm_total_variance(tau, atm, params)
    w = ssvi_total_variance(k, theta, params)
    integrand = _otm_black_normalised(k, w) * np.exp(-k)
    return np.sqrt(2.0 / tau * np.trapezoid(integrand, k, axis=1))


@functools.lru_cache(maxsize=16)
def _vix_table(params: SurfaceParams) -> tuple[np.ndarray, np.ndarray]:
    """(variance-swap vol, ATM 30-day vol) pairs on a geometric ATM grid 0.02-2.5 (monotone)."""
    atm = np.geomspace(0.02, 2.5, 160)
    vs = variance_swap_vol(atm, params)
    return np.maximum.accumulate(vs), atm


def atm_from_vix(vix: ArrayLike, params: SurfaceParams | None = None) -> np.ndarray:
    """ATM 30-day vol whose 30-day variance-swap vol equals ``vix / 100`` (table interpolation).

    >>> 0.12 < float(atm_from_vix(15.0)) < 0.14
    True
    """
    vs, atm = _vix_table(params or DEFAULT_PARAMS)
    return np.interp(np.asarray(vix, float) / 100.0, vs, atm)


DEFAULT_PARAMS = SurfaceParams()
