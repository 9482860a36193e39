"""Vectorised Black-Scholes-Merton pricing and Greeks with a continuous dividend yield.

All functions broadcast over numpy arrays.  Units: ``T`` in years, ``r`` and ``q``
continuously compounded, ``sigma`` annualised.  Theta is per calendar day (divided by
365), vega per volatility point (divided by 100), rho per rate point (divided by 100).

    d1 = (ln(S/K) + (r - q + sigma^2/2) T) / (sigma sqrt(T)),  d2 = d1 - sigma sqrt(T)
    call = S e^{-qT} N(d1) - K e^{-rT} N(d2)
    put  = K e^{-rT} N(-d2) - S e^{-qT} N(-d1)

>>> round(float(bsm_price(100.0, 100.0, 1.0, 0.05, 0.0, 0.2, True)), 6)
10.450584
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr

_SQRT_2PI = np.sqrt(2.0 * np.pi)


class Greeks(NamedTuple):
    price: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    theta: np.ndarray  # per calendar day
    vega: np.ndarray  # per volatility point (0.01)
    rho: np.ndarray  # per rate point (0.01)


def _npdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x * x) / _SQRT_2PI


def _d1_d2(S: np.ndarray, K: np.ndarray, T: np.ndarray, r: np.ndarray, q: np.ndarray, sigma: np.ndarray):
    vol_sqrt_t = sigma * np.sqrt(T)
    d1 = (np.log(S / K) + (r - q + 0.5 * sigma * sigma) * T) / vol_sqrt_t
    return d1, d1 - vol_sqrt_t, vol_sqrt_t


def bsm_price(
    S: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, q: ArrayLike, sigma: ArrayLike, is_call: ArrayLike
) -> np.ndarray:
    """European BSM price; at ``T <= 0`` or ``sigma <= 0`` the discounted intrinsic value."""
    return bsm_greeks(S, K, T, r, q, sigma, is_call).price


def bsm_greeks(
    S: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, q: ArrayLike, sigma: ArrayLike, is_call: ArrayLike
) -> Greeks:
    """European BSM price and Greeks (theta per day, vega and rho per point)."""
    S_, K_, T_, r_, q_, sig_, call_ = np.broadcast_arrays(
        np.asarray(S, float), np.asarray(K, float), np.asarray(T, float), np.asarray(r, float),
        np.asarray(q, float), np.asarray(sigma, float), np.asarray(is_call, bool),
    )
    live = (T_ > 0) & (sig_ > 0)
    Ts = np.where(live, T_, 1.0)
    ss = np.where(live, sig_, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1, d2, vst = _d1_d2(S_, K_, Ts, r_, q_, ss)
    dq = np.exp(-q_ * Ts)
    dr = np.exp(-r_ * Ts)
    sign = np.where(call_, 1.0, -1.0)
    nd1 = ndtr(sign * d1)
    nd2 = ndtr(sign * d2)
    pdf1 = _npdf(d1)
    price = sign * (S_ * dq * nd1 - K_ * dr * nd2)
    delta = sign * dq * nd1
    gamma = dq * pdf1 / (S_ * vst)
    vega = S_ * dq * pdf1 * np.sqrt(Ts)
    theta = -S_ * dq * pdf1 * ss / (2.0 * np.sqrt(Ts)) - sign * r_ * K_ * dr * nd2 + sign * q_ * S_ * dq * nd1
    rho = sign * K_ * Ts * dr * nd2

    # expired or zero-vol options: (discounted) intrinsic on the forward, Greeks of the payoff
    Tz = np.maximum(T_, 0.0)
    fwd_intr = np.maximum(sign * (S_ * np.exp(-q_ * Tz) - K_ * np.exp(-r_ * Tz)), 0.0)
    itm = sign * (S_ * np.exp(-q_ * Tz) - K_ * np.exp(-r_ * Tz)) > 0
    dead_delta = np.where(itm, sign * np.exp(-q_ * Tz), 0.0)
    zero = np.zeros_like(price)
    return Greeks(
        price=np.where(live, price, fwd_intr),
        delta=np.where(live, delta, dead_delta),
        gamma=np.where(live, gamma, zero),
        theta=np.where(live, theta / 365.0, zero),
        vega=np.where(live, vega / 100.0, zero),
        rho=np.where(live, rho / 100.0, zero),
    )
