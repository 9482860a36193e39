"""American exercise: Barone-Adesi-Whaley and a vectorised Cox-Ross-Rubinstein tree.

Used for early-exercise checks (the European prices in ``analytics.pricing`` are what the
chains quote).  Both broadcast over numpy arrays; the tree loops only over time steps.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr

from analytics.pricing import _npdf, bsm_price

# --------------------------------------------------------------------------- American exercise


def american_price(
    S: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, q: ArrayLike, sigma: ArrayLike, is_call: ArrayLike,
    method: str = "baw", steps: int = 200,
) -> np.ndarray:
    """American option price by Barone-Adesi-Whaley (``"baw"``) or a CRR binomial tree (``"binomial"``).

    ``T <= 0`` gives intrinsic value; ``sigma <= 0`` gives the best deterministic exercise
    ``max_t e^{-rt} max(±(S e^{(r-q)t} - K), 0)``.  ``steps`` is used by the tree only.
    An unknown ``method`` or ``steps < 1`` raises ``ValueError`` (analytics knows no project errors).
    """
    S_, K_, T_, r_, q_, sig_, call_ = np.broadcast_arrays(
        np.asarray(S, float), np.asarray(K, float), np.asarray(T, float), np.asarray(r, float),
        np.asarray(q, float), np.asarray(sigma, float), np.asarray(is_call, bool),
    )
    if method not in ("baw", "binomial"):
        raise ValueError(f"american_price: unknown method {method!r}; use 'baw' or 'binomial'")
    if method == "binomial" and int(steps) < 1:
        raise ValueError(f"american_price: steps={steps} must be a positive integer")
    live = (T_ > 0) & (sig_ > 0)
    out = np.array(_deterministic_american(S_, K_, T_, r_, q_, call_), dtype=float)
    if live.any():
        args = (S_[live], K_[live], T_[live], r_[live], q_[live], sig_[live], call_[live])
        out[live] = _baw(*args) if method == "baw" else _crr_tree(*args, int(steps), american=True)
    return out


def early_exercise_premium(
    S: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, q: ArrayLike, sigma: ArrayLike, is_call: ArrayLike,
    method: str = "baw", steps: int = 200,
) -> np.ndarray:
    """American minus European value, ``>= 0``.

    For ``"binomial"`` the European value comes from the same tree, so discretisation error cancels.
    """
    if method == "binomial":
        S_, K_, T_, r_, q_, sig_, call_ = np.broadcast_arrays(
            np.asarray(S, float), np.asarray(K, float), np.asarray(T, float), np.asarray(r, float),
            np.asarray(q, float), np.asarray(sigma, float), np.asarray(is_call, bool),
        )
        live = (T_ > 0) & (sig_ > 0)
        euro = np.array(bsm_price(S_, K_, T_, r_, q_, sig_, call_), dtype=float)
        if live.any():
            args = (S_[live], K_[live], T_[live], r_[live], q_[live], sig_[live], call_[live], int(steps))
            euro[live] = _crr_tree(*args, american=False)
        amer = american_price(S_, K_, T_, r_, q_, sig_, call_, method, steps)
    else:
        amer = american_price(S, K, T, r, q, sigma, is_call, method, steps)
        euro = bsm_price(S, K, T, r, q, sigma, is_call)
    return np.maximum(amer - euro, 0.0)


def _deterministic_american(
    S: np.ndarray, K: np.ndarray, T: np.ndarray, r: np.ndarray, q: np.ndarray, call: np.ndarray
) -> np.ndarray:
    """Zero-vol value ``max_t g(t)``, ``g = ±(S e^{-qt} - K e^{-rt})``: ends and ``t* = ln(rK/(qS))/(r-q)``."""
    sign = np.where(call, 1.0, -1.0)
    Tz = np.maximum(T, 0.0)
    with np.errstate(all="ignore"):
        t_star = np.log(r * K / (q * S)) / (r - q)
    t_star = np.where(np.isfinite(t_star) & (t_star > 0) & (t_star < Tz), t_star, 0.0)
    values = [sign * (S * np.exp(-q * t) - K * np.exp(-r * t)) for t in (0.0, Tz, t_star)]
    return np.maximum(np.maximum(values[0], values[1]), np.maximum(values[2], 0.0))


def _crr_tree(
    S: np.ndarray, K: np.ndarray, T: np.ndarray, r: np.ndarray, q: np.ndarray, sigma: np.ndarray,
    call: np.ndarray, steps: int, american: bool,
) -> np.ndarray:
    """CRR tree as in QuantLib's ``BinomialVanillaEngine("crr")`` on 1-D arrays, vectorised over options and nodes.

    ``dx = sigma sqrt(dt)``, nodes ``S e^{(2j-i) dx}``, ``p_up = 1/2 + (r - q - sigma^2/2) dt / (2 dx)``
    (clipped to [0, 1]), ``V_i = e^{-r dt} (p_up V_{i+1,j+1} + (1 - p_up) V_{i+1,j})``, then
    ``max(V_i, payoff)`` at every node when American.  Options are processed in chunks to bound memory.
    """
    out = np.empty(S.shape)
    chunk = max(1, 131_072 // (steps + 1))  # ~1 MB per buffer keeps the backward sweep in cache
    for start in range(0, S.size, chunk):
        sl = slice(start, start + chunk)
        out[sl] = _crr_chunk(S[sl], K[sl], T[sl], r[sl], q[sl], sigma[sl], call[sl], steps, american)
    return out


def _crr_chunk(
    S: np.ndarray, K: np.ndarray, T: np.ndarray, r: np.ndarray, q: np.ndarray, sigma: np.ndarray,
    call: np.ndarray, steps: int, american: bool,
) -> np.ndarray:
    """Backward induction for one chunk, in place in one ``(n, steps + 1)`` buffer; loops over time steps only."""
    dt = (T / steps)[:, None]
    dx = sigma[:, None] * np.sqrt(dt)
    p_up = np.clip(0.5 + 0.5 * (r - q - 0.5 * sigma * sigma)[:, None] * dt / dx, 0.0, 1.0)
    disc = np.exp(-r[:, None] * dt)
    up, down = disc * p_up, disc * (1.0 - p_up)
    sign = np.where(call, 1.0, -1.0)[:, None]
    # column k holds the payoff at S e^{(k - steps) dx}; step i uses columns steps-i, steps-i+2, ..., steps+i
    payoff = np.maximum(sign * (S[:, None] * np.exp(np.arange(-steps, steps + 1) * dx) - K[:, None]), 0.0)
    values = payoff[:, ::2].copy()
    for i in range(steps - 1, -1, -1):
        from_up = up * values[:, 1: i + 2]
        now = values[:, : i + 1]
        np.multiply(now, down, out=now)
        np.add(now, from_up, out=now)
        if american:
            np.maximum(now, payoff[:, steps - i: steps + i + 1: 2], out=now)
    return values[:, 0].copy()


def _baw_q_k(r: np.ndarray, q: np.ndarray, variance: np.ndarray, T: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """BAW exponent ``Q = (-(n-1) ± sqrt((n-1)^2 + 4k)) / 2``, ``n = 2(r-q)/s^2``, ``k = 2r/(s^2 (1-e^{-rT}))``."""
    n = 2.0 * (r - q) * T / variance
    dr = np.exp(-r * T)
    with np.errstate(all="ignore"):
        k = np.where(np.abs(1.0 - dr) > 1e-12, 2.0 * r * T / (variance * (1.0 - dr)), 2.0 / variance)
    return 0.5 * (-(n - 1.0) + sign * np.sqrt((n - 1.0) ** 2 + 4.0 * k))


def _baw_rhs(
    s_star: np.ndarray, K: np.ndarray, T: np.ndarray, r: np.ndarray, q: np.ndarray, sigma: np.ndarray,
    sign: np.ndarray, Q: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``RHS(S*) = euro(S*) ± (1 - e^{-qT} N(±d1)) S*/Q`` and ``b = dRHS/dS*``.

    Newton on ``±(S* - K) = RHS(S*)``: ``S*_new = (±K + RHS - b S*) / (±1 - b)``.
    """
    dq = np.exp(-q * T)
    vst = sigma * np.sqrt(T)
    d1 = (np.log(s_star / K) + (r - q) * T + 0.5 * vst * vst) / vst
    n_d1 = ndtr(sign * d1)
    euro = sign * (s_star * dq * n_d1 - K * np.exp(-r * T) * ndtr(sign * (d1 - vst)))
    rhs = euro + sign * (1.0 - dq * n_d1) * s_star / Q
    slope = sign * dq * n_d1 * (1.0 - 1.0 / Q) + (sign - dq * _npdf(d1) / vst) / Q
    return rhs, slope


def _baw(
    S: np.ndarray, K: np.ndarray, T: np.ndarray, r: np.ndarray, q: np.ndarray, sigma: np.ndarray,
    call: np.ndarray, tol: float = 1e-10, max_iter: int = 200,
) -> np.ndarray:
    """Barone-Adesi-Whaley (1987) as in QuantLib, on 1-D arrays with ``T > 0`` and ``sigma > 0``.

    ``V = euro(S) + A (S/S*)^Q`` with ``A = ±(S*/Q)(1 - e^{-qT} N(±d1(S*)))`` while ``S`` is on the
    continuation side of the critical price ``S*``, else intrinsic.  The premium is bounded by
    ``S(1 - e^{-qT})`` for calls and ``K(1 - e^{-rT})`` for puts; where that bound is below 1e-10
    (``q <= 0`` calls, ``r <= 0`` puts) the European value is returned.
    """
    value = bsm_price(S, K, T, r, q, sigma, call)
    early = np.flatnonzero(np.where(call, -S * np.expm1(-q * T), -K * np.expm1(-r * T)) > 1e-10)
    if early.size == 0:
        return value
    S, K, T, r, q, sigma, call = (a[early] for a in (S, K, T, r, q, sigma, call))
    sign = np.where(call, 1.0, -1.0)
    variance = sigma * sigma * T
    Q = _baw_q_k(r, q, variance, T, sign)
    s_star = _baw_critical_price(K, T, r, q, sigma, sign, Q, tol, max_iter)
    d1 = (np.log(s_star / K) + (r - q) * T + 0.5 * variance) / np.sqrt(variance)
    A = sign * (s_star / Q) * (1.0 - np.exp(-q * T) * ndtr(sign * d1))
    with np.errstate(over="ignore"):  # overflow only on the exercise side, where intrinsic is taken
        continuation = value[early] + A * (S / s_star) ** Q
    value[early] = np.where(sign * (S - s_star) >= 0, sign * (S - K), continuation)
    return value


def _baw_critical_price(
    K: np.ndarray, T: np.ndarray, r: np.ndarray, q: np.ndarray, sigma: np.ndarray, sign: np.ndarray,
    Q: np.ndarray, tol: float, max_iter: int,
) -> np.ndarray:
    """``S*`` solving ``±(S* - K) = RHS(S*)`` by BAW's Newton iteration from the BAW seed.

    Stops per option once ``|±(S* - K) - RHS(S*)| / K <= tol`` (QuantLib uses ``tol = 1e-6``).
    """
    s_star = _baw_seed(K, T, r, q, sigma * sigma * T, sign)
    active = np.ones(K.shape, bool)
    for _ in range(max_iter):
        a = np.flatnonzero(active)
        if a.size == 0:
            break
        rhs, slope = _baw_rhs(s_star[a], K[a], T[a], r[a], q[a], sigma[a], sign[a], Q[a])
        active[a] = np.abs(sign[a] * (s_star[a] - K[a]) - rhs) / K[a] > tol
        newton = (sign[a] * K[a] + rhs - slope * s_star[a]) / (sign[a] - slope)
        newton = _baw_keep_in_domain(newton, s_star[a], K[a], sign[a])
        s_star[a] = np.where(active[a], newton, s_star[a])
    return s_star


def _baw_keep_in_domain(candidate: np.ndarray, fallback: np.ndarray, K: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """Keep ``S*`` where it can live (call ``S* > K``, put ``0 < S* < K``): halve the way to the edge otherwise.

    Never triggers on ordinary inputs (QuantLib's iterates are reproduced); it rescues very low variances.
    """
    valid = np.where(sign > 0, candidate > K, (candidate > 0) & (candidate < K))
    edge = np.where(sign > 0, K, np.where(candidate <= 0, 0.0, K))
    return np.where(valid, candidate, 0.5 * (fallback + edge))


def _baw_seed(
    K: np.ndarray, T: np.ndarray, r: np.ndarray, q: np.ndarray, variance: np.ndarray, sign: np.ndarray
) -> np.ndarray:
    """BAW seed ``S_0 = S_inf + (K - S_inf) e^h``, ``S_inf = K/(1 - 1/q_inf)``, ``h = -((r-q)T ± 2sd) K/(S_inf-K)``."""
    n = 2.0 * (r - q) * T / variance
    m = 2.0 * r * T / variance
    q_inf = 0.5 * (-(n - 1.0) + sign * np.sqrt((n - 1.0) ** 2 + 4.0 * m))
    s_inf = K / (1.0 - 1.0 / q_inf)
    h = -((r - q) * T + sign * 2.0 * np.sqrt(variance)) * K / (s_inf - K)
    with np.errstate(over="ignore"):
        seed = s_inf + (K - s_inf) * np.exp(h)
    return _baw_keep_in_domain(seed, s_inf, K, sign)  # s_inf is always in the domain
