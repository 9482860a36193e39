"""Modelled SPY option chains priced from the VIX-anchored surface (``ModelChainSource``).

At a timestamp ``t`` (tz-aware, America/New_York):

* ``S_t`` is the as-of spot (last close at or before ``t``); the day's reference spot ``S_ref``
  is the previous session's close.
* VIX: with an intraday VIX path (``vix_path``, the embedded market's joint spot/VIX bridge,
  which ends each session at the real close) the as-of value of that path; without one a causal
  formula ``vix_t = VIX_prev_close * (S_t / S_ref)^(-beta)``, ``beta = 8`` (log-VIX elasticity
  to the index, 2014-2018 daily fit), re-anchored every day on the previous official close and
  clipped to [5, 150].  Only information up to ``t`` is used; on the first day of the VIX
  series (no previous close) its first value is the anchor.
* ``tau = (U(expiry close) - U(t)) / 315`` years in trading time (``data_factory.clock``): the
  variance clock ``U`` gives every NYSE session 1 unit spread uniformly over its minutes and every
  gap between sessions (night, weekend, holiday) 0.25 unit spread over its calendar duration;
  ``315 = 1.25 * 252`` units make a variance year, so a calendar year averages about one year of
  tau and 30-DTE options price close to calendar time, while a same-day option at 10:00 keeps
  the 6 of 6.5 session hours of variance it has left (``tau = (6/6.5)/315``).  The expiry close
  is the close of the expiry date's session (16:00 ET, 13:00 on an early close).  The same tau
  discounts (``F = S e^{(r-q) tau}``); the IV is ``implied_vol(ln(K/F), tau, atm_from_vix(vix_t))``;
  price and Greeks are BSM (theta per 1/365 of a variance-clock year, i.e. per 315/365 session
  units, not per calendar day; vega per vol point).  At ``tau <= 0`` (at or after the expiry
  close) contracts are worth intrinsic.
* Quotes: ``spread = 0.01 + mid * 0.01 (1 + 0.25 |z|)(1 + 1.5 tau) * w`` with
  ``z = k / (sigma sqrt(tau))`` (wider away from the money and for long-dated options, relatively
  wider for cheap ones) and the market-state factor
  ``w = (vix_t / 16)^1.5 * (1 + 0.15 |ln(S_t / S_ref)| / (atm_ref / sqrt(252)))``: spreads widen
  with the vol level and with the day's move in daily standard deviations (see README, "Market
  model", for the reference), then
  ``bid = round_cent(mid - spread/2)`` (never below 0) and ``ask = round_cent(mid + spread/2)``,
  at least one cent apart: SPY quotes on a $0.01 grid at every price (penny programme), so a
  quote sits on the nearest cents to the modelled one (up to half a cent narrower or wider on
  each side) and is never less than $0.01 wide.
* Volume and open interest are daily figures, deterministic in moneyness and DTE (see
  ``_liquidity``) times log-normal noise from a Generator seeded by (seed, date, expiry).

Strikes of a day: ``strike_grid(S_ref, step, far_step)`` (per underlying; $1 / $5 for SPY);
expiries: ``listed_expiries(date)``.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from analytics.pricing import bsm_greeks
from core.dto import ChainSnapshot, DataError, ExpirySlice, OptionRight
from data_factory.base import DEFAULTS, NY_TZ, ContractMarks
from data_factory.clock import UNITS_PER_YEAR, TradingClock, trading_clock
from data_factory.listing import is_monthly, listed_expiries, strike_grid
from data_factory.surface import MIN_TAU, SurfaceParams, atm_from_vix, implied_vol

VIX_LEVERAGE_BETA = 8.0
SPREAD_VIX_REF = 16.0
SPREAD_VIX_POWER = 1.5
SPREAD_MOVE = 0.15
VIX_BOUNDS = (5.0, 150.0)
SPREAD_MIN = 0.01
SPREAD_REL = 0.01
SPREAD_MONEYNESS = 0.25
SPREAD_TENOR = 1.5
OI_SCALE = 20_000.0
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


class _MarketState:
    """Spot, VIX and day anchors at one timestamp."""

    __slots__ = ("atm_30d", "day", "ref_atm", "ref_spot", "spot", "ts", "ts_ns", "u", "vix", "widen")

    def __init__(self, ts: pd.Timestamp, day: dt.date, spot: float, ref_spot: float, vix: float, ref_vix: float,
                 params: SurfaceParams, clock: TradingClock) -> None:
        self.ts, self.ts_ns, self.day = ts, int(ts.value), day
        self.u = float(clock.units(np.array([self.ts_ns], dtype=np.int64))[0])  # variance clock at ts
        self.spot, self.ref_spot, self.vix = spot, ref_spot, vix
        self.atm_30d = float(atm_from_vix(vix, params))
        self.ref_atm = float(atm_from_vix(ref_vix, params))
        self.widen = float(spread_widening(vix, spot, ref_spot, self.ref_atm))


def spread_widening(vix: ArrayLike, spot: ArrayLike, ref_spot: ArrayLike, ref_atm: ArrayLike) -> np.ndarray:
    """Market-state spread factor ``(vix / 16)^1.5 * (1 + 0.15 * |day's move| in daily sds)``."""
    move = np.abs(np.log(np.asarray(spot, float) / np.asarray(ref_spot, float)))
    daily_sd = np.maximum(np.asarray(ref_atm, float), 1e-4) / np.sqrt(252.0)
    return (np.asarray(vix, float) / SPREAD_VIX_REF) ** SPREAD_VIX_POWER * (1.0 + SPREAD_MOVE * move / daily_sd)


def _ordinals(naive: pd.DatetimeIndex) -> np.ndarray:
    """Proleptic Gregorian ordinals (``date.toordinal``) of the dates of a naive index."""
    return naive.normalize().as_unit("ns").asi8 // 86_400_000_000_000 + _EPOCH_ORDINAL


def _round_cent(x: np.ndarray) -> np.ndarray:
    return np.round(np.round(x * 100.0, 6)) / 100.0


def quote_bid_ask(mid: np.ndarray, z: np.ndarray, tau: np.ndarray, widen: ArrayLike = 1.0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Bid/ask around ``mid``: ``spread = 0.01 + mid * 0.01 (1 + 0.25|z|)(1 + 1.5 tau) * widen``, cent ticks.

    >>> [float(v[0]) for v in quote_bid_ask(np.array([2.0]), np.array([0.0]), np.array([0.1]))]
    [1.98, 2.02]
    """
    spread = SPREAD_MIN + mid * SPREAD_REL * (1.0 + SPREAD_MONEYNESS * np.abs(z)) * (1.0 + SPREAD_TENOR * tau) * \
        np.asarray(widen, float)
    bid = np.maximum(_round_cent(mid - 0.5 * spread), 0.0)
    ask = np.maximum(_round_cent(mid + 0.5 * spread), bid + SPREAD_MIN)
    return np.round(bid, 2), np.round(ask, 2)


def _nearest_in_sorted(values: np.ndarray, target: float) -> int:
    """Index of the element of ascending ``values`` closest to ``target`` (binary search)."""
    i = int(np.searchsorted(values, target))
    if i <= 0:
        return 0
    if i >= len(values):
        return len(values) - 1
    return i if abs(values[i] - target) < abs(values[i - 1] - target) else i - 1


def find_strike_by_delta(slice_: ExpirySlice, right: OptionRight, target_abs_delta: float) -> int:
    """Index of the strike whose |delta| is nearest ``target_abs_delta``.

    Call deltas fall and |put deltas| rise with the strike, so ``-call_delta`` and ``-put_delta``
    are ascending and ``np.searchsorted`` finds the bracket.
    """
    if right is OptionRight.CALL:
        return _nearest_in_sorted(-slice_.call_delta, -float(target_abs_delta))
    return _nearest_in_sorted(-slice_.put_delta, float(target_abs_delta))


def nearest_strike_index(slice_: ExpirySlice, strike: float) -> int:
    """Index of the listed strike nearest ``strike``."""
    return _nearest_in_sorted(slice_.strikes, float(strike))


class ModelChainSource:
    """``ChainSource`` of modelled SPY chains over a close series and a daily VIX frame."""

    def __init__(self, spot: pd.Series, vix: pd.DataFrame, underlying: str = DEFAULTS.strategy.underlying,
                 params: SurfaceParams | None = None, seed: int = DEFAULTS.run.seed, cache_size: int = 512,
                 vix_path: pd.Series | None = None, strike_steps: tuple[float, float] = (1.0, 5.0)) -> None:
        self.underlying = underlying
        self.strike_steps = (float(strike_steps[0]), float(strike_steps[1]))
        self.params = params or SurfaceParams()
        self.seed = int(seed)
        self._cache_size = int(cache_size)
        self._init_spot(spot)
        self._init_vix(vix)
        self._vpath: np.ndarray | None = None
        if vix_path is not None:
            values = np.asarray(vix_path, dtype=float)
            if len(values) != len(self._close) or not pd.DatetimeIndex(vix_path.index).equals(spot.index):
                raise DataError("intraday VIX path must be indexed like the spot series; build both from the same bars")
            if not np.all(np.isfinite(values) & (values > 0)):
                raise DataError("intraday VIX path has missing or non-positive values")
            self._vpath = values
        self._slices: OrderedDict[tuple[int, dt.date], ExpirySlice] = OrderedDict()
        self._states: OrderedDict[int, _MarketState] = OrderedDict()
        self._liquidity_cache: OrderedDict[tuple[dt.date, dt.date], tuple[np.ndarray, ...]] = OrderedDict()
        self._grids: dict[dt.date, np.ndarray] = {}
        self._clock = trading_clock()
        self._expiry_u: dict[int, float] = {}

    # ----------------------------------------------------------------- inputs
    def _init_spot(self, spot: pd.Series) -> None:
        if not isinstance(spot, pd.Series) or not isinstance(spot.index, pd.DatetimeIndex) or spot.empty:
            raise DataError("chain spot must be a non-empty pandas Series on a DatetimeIndex; pass bars['close']")
        if spot.index.tz is None:
            raise DataError("chain spot index is tz-naive; localise it to America/New_York (close-labelled bars)")
        if not (spot.index.is_monotonic_increasing and spot.index.is_unique):
            raise DataError("chain spot index must be sorted and unique; sort and de-duplicate the bars first")
        close = spot.to_numpy(dtype=float)
        if not np.all(np.isfinite(close) & (close > 0)):
            raise DataError("chain spot has non-positive or missing prices; clean the close series first")
        idx = spot.index.tz_convert(NY_TZ)
        self._ns = np.asarray(idx.as_unit("ns").asi8, dtype=np.int64)  # UTC nanoseconds
        self._close = close
        day_ord = _ordinals(idx.tz_localize(None))
        self._day_ord = day_ord
        self._prev_pos = np.searchsorted(day_ord, day_ord, side="left") - 1

    def _init_vix(self, vix: pd.DataFrame) -> None:
        if not isinstance(vix, pd.DataFrame) or "vix" not in vix.columns or vix.empty:
            raise DataError("chain VIX must be a non-empty DataFrame with a 'vix' column indexed by date")
        frame = vix[["vix"]].dropna().sort_index()  # a missing day falls back to the one before (as-of)
        values = frame["vix"].to_numpy(dtype=float)
        if frame.empty or not np.all(np.isfinite(values) & (values > 0)):
            raise DataError("chain VIX has no values or non-positive/infinite ones; clean the VIX frame first")
        index = pd.DatetimeIndex(frame.index)
        self._vix_ord = _ordinals(index.tz_localize(None) if index.tz is not None else index)
        self._vix = values

    # ----------------------------------------------------------------- state
    def _state(self, ts: pd.Timestamp | dt.datetime) -> _MarketState:
        stamp = pd.Timestamp(ts)
        if stamp.tz is None:
            raise DataError(f"timestamp {stamp} is tz-naive; pass a tz-aware America/New_York timestamp")
        key = int(stamp.as_unit("ns").value)
        state = self._states.get(key)
        if state is not None:
            return state
        pos = int(np.searchsorted(self._ns, key, side="right")) - 1
        if pos < 0:
            raise DataError(f"no {self.underlying} spot at or before {stamp}; the chain's spot series starts later")
        local = stamp.tz_convert(NY_TZ)
        day = local.date()
        prev = int(self._prev_pos[pos]) if self._day_ord[pos] == day.toordinal() else pos
        ref_spot = float(self._close[prev] if prev >= 0 else self._close[0])
        j = int(np.searchsorted(self._vix_ord, day.toordinal(), side="left")) - 1
        ref_vix = float(self._vix[max(j, 0)])
        spot = float(self._close[pos])
        if self._vpath is not None:
            vix = float(self._vpath[pos])
        else:
            vix = float(np.clip(ref_vix * (spot / ref_spot) ** (-VIX_LEVERAGE_BETA), *VIX_BOUNDS))
        state = _MarketState(local, day, spot, ref_spot, vix, ref_vix, self.params, self._clock)
        self._remember(self._states, key, state, 4 * self._cache_size)
        return state

    @staticmethod
    def _remember(cache: OrderedDict, key: object, value: object, limit: int) -> None:
        cache[key] = value
        if len(cache) > limit:
            cache.popitem(last=False)

    def spot_at(self, ts: pd.Timestamp) -> float:
        """As-of spot: the last close at or before ``ts``."""
        return self._state(ts).spot

    def vix_at(self, ts: pd.Timestamp) -> float:
        """VIX at ``ts``: the intraday path's as-of value, or the causal formula (see module docstring)."""
        return self._state(ts).vix

    def _expiry_units(self, day_number: int) -> float:
        """Variance clock at the expiry close (session close; 16:00 New York off-calendar) of a day number."""
        u = self._expiry_u.get(day_number)
        if u is None:
            u = float(self._clock.expiry_units(np.array([day_number], dtype=np.int64))[0])
            self._expiry_u[day_number] = u
        return u

    def _expiry_units_of(self, expiries: np.ndarray) -> np.ndarray:
        days = np.asarray(expiries, dtype="datetime64[D]").astype(np.int64).ravel()
        return np.array([self._expiry_units(d) for d in days.tolist()], dtype=float)

    def _tau(self, state: _MarketState, expiry: dt.date) -> float:
        """Variance-clock years from ``state`` to the expiry close (<= 0 once it has passed)."""
        return (self._expiry_units((expiry - dt.date(1970, 1, 1)).days) - state.u) / UNITS_PER_YEAR

    # ----------------------------------------------------------------- pricing
    def _price(self, state: _MarketState, strikes: np.ndarray, tau: np.ndarray, is_call: np.ndarray) -> dict:
        """Vectorised IV, BSM price/Greeks and bid/ask; ``tau <= 0`` gives intrinsic with bid = ask."""
        p = self.params
        live = tau > 0.0
        t = np.maximum(tau, MIN_TAU)
        log_k = np.log(strikes / state.spot) - (p.rate - p.dividend_yield) * t
        iv = np.where(live, implied_vol(log_k, t, state.atm_30d, p), 0.0)
        g = bsm_greeks(state.spot, strikes, np.where(live, t, 0.0), p.rate, p.dividend_yield, iv, is_call)
        z = log_k / np.where(live, iv * np.sqrt(t), 1.0)
        bid, ask = quote_bid_ask(g.price, z, t, state.widen)
        bid = np.where(live, bid, g.price)
        ask = np.where(live, ask, g.price)
        return {"bid": bid, "ask": ask, "mid": 0.5 * (bid + ask), "iv": iv, "delta": g.delta, "gamma": g.gamma,
                "theta": g.theta, "vega": g.vega}

    def marks(self, ts: pd.Timestamp, expiries: np.ndarray, strikes: np.ndarray, is_call: np.ndarray) -> ContractMarks:
        """Quotes of arbitrary contracts at ``ts`` (same numbers as the slices; no slice is built)."""
        state = self._state(ts)
        tau = (self._expiry_units_of(expiries) - state.u) / UNITS_PER_YEAR
        q = self._price(state, np.asarray(strikes, float).ravel(), tau, np.asarray(is_call, bool).ravel())
        return ContractMarks(**q)

    def spot_vix_path(self, index: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
        """As-of spot and causal VIX at every timestamp of ``index`` (vectorised ``_state``)."""
        spot, vix, _, _ = self._path_states(index)
        return spot, vix

    def _path_states(self, index: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Spot, VIX, the day's reference spot and reference VIX at every timestamp of ``index``."""
        idx = pd.DatetimeIndex(index)
        if idx.tz is None:
            raise DataError("timestamps are tz-naive; pass tz-aware America/New_York timestamps")
        ts_ns = np.asarray(idx.as_unit("ns").asi8, dtype=np.int64)
        pos = np.searchsorted(self._ns, ts_ns, side="right") - 1
        if len(pos) and pos.min() < 0:
            raise DataError(f"no {self.underlying} spot at or before {idx[int(np.argmin(pos))]}")
        day = _ordinals(idx.tz_convert(NY_TZ).tz_localize(None))
        prev = np.where(self._day_ord[pos] == day, self._prev_pos[pos], pos)
        ref_spot = self._close[np.maximum(prev, 0)]
        ref_spot = np.where(prev >= 0, ref_spot, self._close[0])
        j = np.searchsorted(self._vix_ord, day, side="left") - 1
        ref_vix = self._vix[np.maximum(j, 0)]
        spot = self._close[pos]
        if self._vpath is not None:
            return spot, self._vpath[pos], ref_spot, ref_vix
        vix = np.clip(ref_vix * (spot / ref_spot) ** (-VIX_LEVERAGE_BETA), *VIX_BOUNDS)
        return spot, vix, ref_spot, ref_vix

    def marks_path(self, index: pd.DatetimeIndex, expiries: np.ndarray, strikes: np.ndarray,
                   is_call: np.ndarray) -> ContractMarks:
        """Quotes of the same contracts at every timestamp of ``index``: arrays (len(index), n_contracts).

        Equal to calling ``marks`` at each timestamp, in one vectorised pass (used to mark an
        open position over its whole remaining life at once)."""
        idx = pd.DatetimeIndex(index)
        spot, vix, ref_spot, ref_vix = self._path_states(idx)
        p = self.params
        widen = spread_widening(vix, spot, ref_spot, atm_from_vix(ref_vix, p))[:, None]
        u_t = self._clock.units(np.asarray(idx.as_unit("ns").asi8, dtype=np.int64))[:, None]
        tau = (self._expiry_units_of(expiries)[None, :] - u_t) / UNITS_PER_YEAR
        k = np.asarray(strikes, float).ravel()[None, :]
        calls = np.asarray(is_call, bool).ravel()[None, :]
        live = tau > 0.0
        t = np.maximum(tau, MIN_TAU)
        s = spot[:, None]
        log_k = np.log(k / s) - (p.rate - p.dividend_yield) * t
        atm = atm_from_vix(vix, p)[:, None]
        iv = np.where(live, implied_vol(log_k, t, atm, p), 0.0)
        g = bsm_greeks(s, k, np.where(live, t, 0.0), p.rate, p.dividend_yield, iv, calls)
        z = log_k / np.where(live, iv * np.sqrt(t), 1.0)
        bid, ask = quote_bid_ask(g.price, z, t, widen)
        bid = np.where(live, bid, g.price)
        ask = np.where(live, ask, g.price)
        return ContractMarks(bid=bid, ask=ask, mid=0.5 * (bid + ask), iv=iv, delta=g.delta, gamma=g.gamma,
                             theta=g.theta, vega=g.vega)

    # ----------------------------------------------------------------- chains
    def expiries(self, ts: pd.Timestamp) -> list[dt.date]:
        """Listed expiries on ``ts``'s date whose expiry close (the session's close) is still ahead of ``ts``."""
        state = self._state(ts)
        return [e for e in listed_expiries(state.day) if self._tau(state, e) > 0.0]

    def _grid(self, state: _MarketState) -> np.ndarray:
        grid = self._grids.get(state.day)
        if grid is None:
            grid = strike_grid(state.ref_spot, *self.strike_steps)
            grid.flags.writeable = False
            self._grids[state.day] = grid
        return grid

    def _liquidity(self, state: _MarketState, expiry: dt.date, strikes: np.ndarray) -> tuple[np.ndarray, ...]:
        """Daily (call volume, call OI, put volume, put OI) of one expiry on the day's strike grid.

        ``OI = 20000 * exp(-z^2 / 12.5) * (0.35 + 0.65 e^{-dte/150}) * 2 [monthly] * 1.5 [$5 strike]
        * side`` with ``z = ln(K/S_ref) / (atm_ref sqrt(max(dte, 0.5)/365))``, side 1.5 for OTM puts,
        1.2 for OTM calls, 0.6 in the money; ``volume = OI (0.08 + 0.6 e^{-dte/5})``; each figure times
        log-normal(0, 0.25) noise, rounded to whole contracts.
        """
        key = (state.day, expiry)
        hit = self._liquidity_cache.get(key)
        if hit is not None:
            return hit
        dte = (expiry - state.day).days
        z = np.log(strikes / state.ref_spot) / (state.ref_atm * np.sqrt(max(dte, 0.5) / 365.0))
        base = OI_SCALE * np.exp(-z * z / 12.5) * (0.35 + 0.65 * np.exp(-dte / 150.0))
        base *= (2.0 if is_monthly(expiry) else 1.0) * np.where(np.isclose(strikes % 5.0, 0.0), 1.5, 1.0)
        call_oi = base * np.where(strikes > state.ref_spot, 1.2, 0.6)
        put_oi = base * np.where(strikes < state.ref_spot, 1.5, 0.6)
        turnover = 0.08 + 0.6 * np.exp(-dte / 5.0)
        rng = np.random.default_rng([self.seed, state.day.toordinal(), expiry.toordinal()])
        noise = rng.lognormal(0.0, 0.25, size=(4, len(strikes)))
        out = tuple(np.round(x * n) for x, n in zip(
            (call_oi * turnover, call_oi, put_oi * turnover, put_oi), noise, strict=True))
        for arr in out:
            arr.flags.writeable = False
        self._remember(self._liquidity_cache, key, out, self._cache_size)
        return out

    def _build_slices(self, state: _MarketState, expiries: list[dt.date]) -> list[ExpirySlice]:
        """Price every strike of ``expiries`` (calls and puts) in one vectorised pass."""
        strikes = self._grid(state)
        n, m = len(strikes), len(expiries)
        taus = np.array([self._tau(state, e) for e in expiries])
        k_all = np.tile(strikes, 2 * m)
        t_all = np.tile(np.repeat(taus, n), 2)
        call_all = np.repeat([True, False], m * n)
        q = self._price(state, k_all, t_all, call_all)
        for arr in q.values():
            arr.flags.writeable = False  # cached slices share these buffers: read-only views
        out = []
        for i, expiry in enumerate(expiries):
            c, p = slice(i * n, (i + 1) * n), slice((m + i) * n, (m + i + 1) * n)
            cv, coi, pv, poi = self._liquidity(state, expiry, strikes)
            out.append(ExpirySlice(
                expiry=expiry, dte=(expiry - state.day).days, tau=max(float(taus[i]), 0.0), strikes=strikes,
                call_bid=q["bid"][c], call_ask=q["ask"][c], call_iv=q["iv"][c], call_delta=q["delta"][c],
                call_gamma=q["gamma"][c], call_theta=q["theta"][c], call_vega=q["vega"][c],
                call_volume=cv, call_oi=coi,
                put_bid=q["bid"][p], put_ask=q["ask"][p], put_iv=q["iv"][p], put_delta=q["delta"][p],
                put_gamma=q["gamma"][p], put_theta=q["theta"][p], put_vega=q["vega"][p],
                put_volume=pv, put_oi=poi,
            ))
        return out

    def _slices_for(self, state: _MarketState, expiries: list[dt.date]) -> dict[dt.date, ExpirySlice]:
        found = {e: self._slices.get((state.ts_ns, e)) for e in expiries}
        missing = [e for e, s in found.items() if s is None]
        for e in expiries:
            if found[e] is not None:
                self._slices.move_to_end((state.ts_ns, e))  # least-recently-used eviction
        if missing:
            for s in self._build_slices(state, missing):
                found[s.expiry] = s
                self._remember(self._slices, (state.ts_ns, s.expiry), s, self._cache_size)
        return found  # type: ignore[return-value]  # every None was replaced above

    def expiry_slice(self, ts: pd.Timestamp, expiry: dt.date) -> ExpirySlice:
        """Quotes of one listed expiry at ``ts`` (an expiry that closed today is at intrinsic)."""
        state = self._state(ts)
        if expiry not in listed_expiries(state.day):
            raise DataError(f"{self.underlying} expiry {expiry} is not listed on {state.day}; "
                            "use expiries(ts) for the listed ones")
        return self._slices_for(state, [expiry])[expiry]

    def snapshot(self, ts: pd.Timestamp, dte_min: int = 0, dte_max: int = 60) -> ChainSnapshot:
        """Every unexpired listed expiry with ``dte_min <= dte <= dte_max`` calendar days at ``ts``."""
        state = self._state(ts)
        chosen = [e for e in self.expiries(ts) if dte_min <= (e - state.day).days <= dte_max]
        slices = self._slices_for(state, chosen)
        return ChainSnapshot(self.underlying, state.ts.to_pydatetime(), state.spot, slices)
