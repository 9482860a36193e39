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
_EPS = float(np.finfo(float).eps)


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


# --------------------------------------------------------------------------- parity


def parity_gap(
    call: ArrayLike, put: ArrayLike, S: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, q: ArrayLike
) -> np.ndarray:
    """Put-call parity residual ``C - P - (S e^{-qT} - K e^{-rT})``; zero for consistent European prices.

    >>> float(parity_gap(10.450584, 5.573526, 100.0, 100.0, 1.0, 0.05, 0.0).round(5))
    0.0
    """
    Tz = np.maximum(np.asarray(T, float), 0.0)
    forward_value = np.asarray(S, float) * np.exp(-np.asarray(q, float) * Tz)
    return np.asarray(call, float) - np.asarray(put, float) - (
        forward_value - np.asarray(K, float) * np.exp(-np.asarray(r, float) * Tz)
    )


# --------------------------------------------------------------------------- implied volatility

IV_REASONS = ("ok", "expired", "below_intrinsic", "above_upper_bound", "invalid_input", "not_converged")


def implied_vol(
    price: ArrayLike, S: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, q: ArrayLike, is_call: ArrayLike,
    tol: float = 1e-10, max_iter: int = 100,
) -> np.ndarray:
    """Black-Scholes-Merton implied volatility; NaN where no volatility reproduces ``price``.

    See :func:`implied_vol_with_reason` for the method and the reason codes.

    >>> round(float(implied_vol(10.450583572185565, 100.0, 100.0, 1.0, 0.05, 0.0, True)), 10)
    0.2
    """
    return implied_vol_with_reason(price, S, K, T, r, q, is_call, tol, max_iter)[0]


def implied_vol_with_reason(
    price: ArrayLike, S: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, q: ArrayLike, is_call: ArrayLike,
    tol: float = 1e-10, max_iter: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Implied volatility and a reason code per option (one of ``IV_REASONS``).

    The price is reduced to the out-of-the-money time value ``tv = price - max(±(S e^{-qT} - K e^{-rT}), 0)``
    (by parity the price of the OTM twin) and solved for total volatility ``v = sigma sqrt(T)``.  A solution
    exists iff ``0 < tv < min(S e^{-qT}, K e^{-rT})``.  Newton starts at the inflection point
    ``v_c = sqrt(2 |ln(S e^{-qT} / K e^{-rT})|)`` where the OTM price ``f(v)`` turns from convex to concave,
    on ``f`` itself above ``f(v_c)`` and on ``h(v) = 1/sqrt(-ln f_n(v))`` (``f_n = f / sqrt(S e^{-qT} K e^{-rT})``,
    nearly linear in ``v`` for tiny prices) below it, with a bisection fallback inside the bracket.
    Stops when the step in ``sigma`` is below ``tol`` or the price is matched to rounding; ``"not_converged"``
    after ``max_iter`` iterations.
    """
    P, S_, K_, T_, r_, q_, call_ = np.broadcast_arrays(
        np.asarray(price, float), np.asarray(S, float), np.asarray(K, float), np.asarray(T, float),
        np.asarray(r, float), np.asarray(q, float), np.asarray(is_call, bool),
    )
    with np.errstate(all="ignore"):
        finite = np.isfinite(P) & np.isfinite(S_) & np.isfinite(K_) & np.isfinite(T_) & np.isfinite(r_)
        invalid = ~(finite & np.isfinite(q_) & (S_ > 0) & (K_ > 0))
        sqrt_t = np.sqrt(np.where(T_ > 0, T_, 1.0))
        fwd_s = S_ * np.exp(-q_ * np.where(T_ > 0, T_, 0.0))
        disc_k = K_ * np.exp(-r_ * np.where(T_ > 0, T_, 0.0))
        time_value = P - np.maximum(np.where(call_, fwd_s - disc_k, disc_k - fwd_s), 0.0)
        reason = np.select(
            [invalid, T_ <= 0, ~(time_value > 0), time_value >= np.minimum(fwd_s, disc_k)],
            ["invalid_input", "expired", "below_intrinsic", "above_upper_bound"], default="ok",
        ).astype("<U17")
    sigma = np.full(P.shape, np.nan)
    idx = np.flatnonzero(reason == "ok")
    if idx.size:
        flat = (fwd_s.ravel()[idx], disc_k.ravel()[idx], time_value.ravel()[idx])
        v, converged = _solve_total_vol(*flat, tol * sqrt_t.ravel()[idx], max_iter)
        sigma.ravel()[idx] = np.where(converged, v / sqrt_t.ravel()[idx], np.nan)
        reason.ravel()[idx[~converged]] = "not_converged"
    return sigma, reason


def _otm_price_vega(
    fs: np.ndarray, dk: np.ndarray, x: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OTM price ``f = s (fs N(s d1) - dk N(s d2))``, ``s = -sign(x)``; ``df/dv = fs phi(d1)``; rounding scale.

    The scale ``4 eps (fs N(s d1) + dk N(s d2))`` bounds the rounding error of ``f``.
    """
    d1 = x / v + 0.5 * v
    s = np.where(x > 0, -1.0, 1.0)  # x = ln(fs/dk) > 0: the call is ITM, so the OTM twin is the put
    leg_s, leg_k = fs * ndtr(s * d1), dk * ndtr(s * (d1 - v))
    return s * (leg_s - leg_k), fs * _npdf(d1), 4.0 * _EPS * (leg_s + leg_k)


def _solve_total_vol(
    fs: np.ndarray, dk: np.ndarray, target: np.ndarray, tol_v: np.ndarray, max_iter: int
) -> tuple[np.ndarray, np.ndarray]:
    """Safeguarded Newton for ``f(v) = target`` on flat arrays; returns ``v`` and a converged mask."""
    x = np.log(fs / dk)
    v = np.maximum(np.sqrt(2.0 * np.abs(x)), 1e-3)
    with np.errstate(all="ignore"):
        convex = target < _otm_price_vega(fs, dk, x, v)[0]  # root left of the inflection point
        lo = np.where(convex, 0.0, v)
        hi = np.where(convex, v, np.inf)
        h_target = 1.0 / np.sqrt(-np.log(target / np.sqrt(fs * dk)))
        done = np.zeros(v.shape, bool)
        for _ in range(max_iter):
            a = np.flatnonzero(~done)
            if a.size == 0:
                break
            va = v[a]
            f, vega, rounding = _otm_price_vega(fs[a], dk[a], x[a], va)
            below = f < target[a]
            lo[a] = np.where(below, va, lo[a])
            hi[a] = np.where(below, hi[a], va)
            h = 1.0 / np.sqrt(-np.log(f / np.sqrt(fs[a] * dk[a])))
            step = np.where(convex[a], (h_target[a] - h) / (0.5 * h ** 3 * vega / f), (target[a] - f) / vega)
            new = va + step
            inside = (new >= lo[a]) & (new <= hi[a])  # NaN steps fail this test too
            v[a] = np.where(inside, new, np.where(np.isinf(hi[a]), 2.0 * lo[a], 0.5 * (lo[a] + hi[a])))
            matched = np.abs(f - target[a]) <= rounding  # price reproduced to rounding: v is as good as it gets
            done[a] = (inside & (np.abs(step) < tol_v[a])) | matched | (hi[a] - lo[a] < tol_v[a])
    return v, done
