"""Option chains from vendor files: Greeks completion, the as-of chain source, the VIX-like proxy.

Quote times: a ``quote_date`` holding only a date (end-of-day files) is stamped 16:00 New York;
naive timestamps are New York local.  Year fraction ``tau = max(expiry 16:00 - quote time, 0) /
365 days``.  Missing implied volatilities are inverted from the mid ``(bid + ask)/2`` with
``analytics.pricing.implied_vol`` (underlying price of the row, ``rate``, ``div_yield``); where no
volatility reproduces the mid, the IV is interpolated linearly in strike from the neighbours of
the same quote time, expiry and type.  Missing Greeks are ``bsm_greeks`` at that IV (theta per
calendar day, vega per volatility point), vendor values are kept where given.

VIX-like proxy (no VIX file): per day, the last snapshot's ATM IV per expiry (mean of the call
and put IV at the strike nearest the forward ``S e^{(r-q) tau}``), total variance ``w = IV^2 tau``
interpolated linearly in ``tau`` at 30 calendar days among expiries of 7+ days (flat volatility
beyond the listed ones), ``vix = 100 sqrt(w30 / tau30)``, flagged ``is_proxy``.

Sanity: a snapshot whose ``underlying_price`` is more than 10% (log) from the bar close at its
time is refused -- it is another underlying's chain, or another price scale.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from analytics.pricing import bsm_greeks, implied_vol
from core.dto import ChainSnapshot, DataError, ExpirySlice
from data_factory.alignment import MODE_CODES, AlignMode, align_chains, classify, lag_limit_seconds, to_ny
from data_factory.base import DEFAULTS, ContractMarks

NS_PER_DAY = 86_400_000_000_000
EXPIRY_CLOSE_NS = 16 * 3_600_000_000_000
YEAR_NS = 365.0 * NS_PER_DAY
VALUE_COLUMNS = ("bid", "ask", "implied_volatility", "delta", "gamma", "theta", "vega", "volume", "open_interest")
GREEKS = ("delta", "gamma", "theta", "vega")
UNDERLYING_PRICE_GAP = 0.10  # |log(chain underlying / bar close)| above this: not this underlying's chain


def quote_times(values: pd.Series) -> pd.DatetimeIndex:
    """Snapshot times (tz New York); date-only columns are stamped at 16:00."""
    idx = pd.DatetimeIndex(pd.to_datetime(values))
    local = idx.tz_convert("America/New_York").tz_localize(None) if idx.tz is not None else idx
    if len(local) and bool(np.all(local == local.normalize())):
        local = local + pd.Timedelta(hours=16)
    return to_ny(local).as_unit("ns")


def expiry_days(values: pd.Series | np.ndarray) -> np.ndarray:
    """Expiry dates as int64 days since 1970-01-01."""
    return pd.to_datetime(pd.Series(values)).to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)


def expiry_close_ns(exp_day: np.ndarray) -> np.ndarray:
    """UTC nanoseconds of 16:00 New York on each expiry day (days since 1970-01-01)."""
    local_day_ns = np.asarray(exp_day, np.int64) * NS_PER_DAY + EXPIRY_CLOSE_NS
    return pd.DatetimeIndex(local_day_ns.astype("datetime64[ns]")).tz_localize("America/New_York").asi8


def year_fraction(quote_ns: np.ndarray, exp_day: np.ndarray) -> np.ndarray:
    """``max(expiry 16:00 New York - quote time, 0) / 365 days`` on UTC nanoseconds."""
    return np.maximum(expiry_close_ns(exp_day) - np.asarray(quote_ns, np.int64), 0) / YEAR_NS


def prepare_chain(df: pd.DataFrame, rate: float, div_yield: float, greeks: bool = True) -> pd.DataFrame:
    """Standard chain rows -> sorted frame with ``quote_ns, exp_day, is_call, tau`` and every value column."""
    out = pd.DataFrame({
        "quote_ns": quote_times(df["quote_date"]).asi8,
        "exp_day": expiry_days(df["expiration"]),
        "is_call": df["option_type"].astype("string").str.strip().str.lower().str[0].eq("c").to_numpy(dtype=bool),
        "strike": pd.to_numeric(df["strike"]).to_numpy(dtype=float),
        "underlying_price": pd.to_numeric(df["underlying_price"]).to_numpy(dtype=float),
    })
    for col in VALUE_COLUMNS:
        out[col] = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float) if col in df else np.nan
    out = out.sort_values(["quote_ns", "exp_day", "is_call", "strike"], kind="stable").reset_index(drop=True)
    out["tau"] = year_fraction(out["quote_ns"].to_numpy(), out["exp_day"].to_numpy())
    out["implied_volatility"] = _complete_iv(out, rate, div_yield)
    if greeks:
        _complete_greeks(out, rate, div_yield)
    return out


def _complete_iv(out: pd.DataFrame, rate: float, div_yield: float) -> np.ndarray:
    iv = out["implied_volatility"].to_numpy(dtype=float).copy()
    missing = ~np.isfinite(iv)
    if missing.any():
        m = missing
        mid = 0.5 * (out["bid"].to_numpy()[m] + out["ask"].to_numpy()[m])
        iv[m] = implied_vol(mid, out["underlying_price"].to_numpy()[m], out["strike"].to_numpy()[m],
                            out["tau"].to_numpy()[m], rate, div_yield, out["is_call"].to_numpy()[m])
    return _interpolate_by_strike(out, iv)


def _interpolate_by_strike(out: pd.DataFrame, iv: np.ndarray) -> np.ndarray:
    """Fill NaN IVs linearly in strike within each (quote time, expiry, type); flat at the ends."""
    valid = np.isfinite(iv)
    if valid.all():
        return iv
    keys = out[["quote_ns", "exp_day", "is_call"]].to_numpy(dtype=np.int64)
    group = np.r_[0, np.cumsum(np.any(keys[1:] != keys[:-1], axis=1))]
    k = out["strike"].to_numpy()
    ivs, ks = pd.Series(np.where(valid, iv, np.nan)), pd.Series(np.where(valid, k, np.nan))
    by = ivs.groupby(group)
    iv_lo, iv_hi = by.ffill().to_numpy(), by.bfill().to_numpy()
    k_lo, k_hi = ks.groupby(group).ffill().to_numpy(), ks.groupby(group).bfill().to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        inner = iv_lo + (k - k_lo) / (k_hi - k_lo) * (iv_hi - iv_lo)
    filled = np.where(np.isfinite(inner), inner, np.where(np.isfinite(iv_lo), iv_lo, iv_hi))
    return np.where(valid, iv, filled)


def _complete_greeks(out: pd.DataFrame, rate: float, div_yield: float) -> None:
    need = np.zeros(len(out), bool)
    for g in GREEKS:
        need |= ~np.isfinite(out[g].to_numpy())
    if not need.any():
        return
    model = bsm_greeks(out["underlying_price"].to_numpy()[need], out["strike"].to_numpy()[need],
                       out["tau"].to_numpy()[need], rate, div_yield, out["implied_volatility"].to_numpy()[need],
                       out["is_call"].to_numpy()[need])
    for g in GREEKS:
        col = out[g].to_numpy(dtype=float).copy()
        sub = col[need]
        col[need] = np.where(np.isfinite(sub), sub, getattr(model, g))
        out[g] = col


def vix_proxy(chain: pd.DataFrame, rate: float, div_yield: float) -> pd.DataFrame:
    """Daily VIX-like series (index ``date``, columns ``vix``, ``is_proxy``) from prepared chain rows."""
    local = pd.DatetimeIndex(chain["quote_ns"].to_numpy().astype("datetime64[ns]")).tz_localize("UTC")
    day = local.tz_convert("America/New_York").tz_localize(None).normalize().to_numpy()
    last = chain["quote_ns"].groupby(day).transform("max").to_numpy()
    rows = chain.loc[(chain["quote_ns"].to_numpy() == last) & np.isfinite(chain["implied_volatility"].to_numpy())]
    rows = rows.assign(day=day[rows.index], dist=np.abs(np.log(rows["strike"] / (
        rows["underlying_price"] * np.exp((rate - div_yield) * rows["tau"])))))
    atm = rows.loc[rows.groupby(["day", "exp_day", "is_call"])["dist"].idxmin()]
    per_exp = atm.groupby(["day", "exp_day"]).agg(iv=("implied_volatility", "mean"), tau=("tau", "first"))
    per_exp = per_exp.loc[per_exp["tau"] > 0].reset_index()
    days, values = [], []
    for d, grp in per_exp.groupby("day", sort=True):
        days.append(d)
        values.append(_thirty_day_vol(grp["tau"].to_numpy(), grp["iv"].to_numpy()))
    index = pd.DatetimeIndex(days, name="date").as_unit("ns")
    return pd.DataFrame({"vix": 100.0 * np.asarray(values, float), "is_proxy": True}, index=index)


def _thirty_day_vol(tau: np.ndarray, iv: np.ndarray) -> float:
    """Total variance interpolated linearly in tau at 30 days (expiries of 7+ days; flat vol outside)."""
    keep = tau >= 7 / 365.0
    if keep.any():
        tau, iv = tau[keep], iv[keep]
    order = np.argsort(tau)
    tau, iv = tau[order], iv[order]
    t30 = 30 / 365.0
    if t30 <= tau[0]:
        return float(iv[0])
    if t30 >= tau[-1]:
        return float(iv[-1])
    return float(np.sqrt(np.interp(t30, tau, iv * iv * tau) / t30))


SIDE_FIELDS = {"bid": "bid", "ask": "ask", "iv": "implied_volatility", "delta": "delta", "gamma": "gamma",
               "theta": "theta", "vega": "vega", "volume": "volume", "oi": "open_interest"}
_KEY_SCALE = 10**9  # contract key = (expiry day * 2 + is_call) * 1e9 + strike in thousandths


def _contract_key(exp_day: np.ndarray, is_call: np.ndarray, strike: np.ndarray) -> np.ndarray:
    return (np.asarray(exp_day, np.int64) * 2 + np.asarray(is_call, np.int64)) * _KEY_SCALE + np.round(
        np.asarray(strike, float) * 1000).astype(np.int64)


def timestamp_ns(ts: pd.Timestamp | dt.datetime | dt.date) -> int:
    """UTC nanoseconds of ``ts``; naive times are New York local, a bare date means 16:00."""
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        t = (t + pd.Timedelta(hours=16) if t == t.normalize() else t).tz_localize("America/New_York")
    return int(t.as_unit("ns").value)


def bar_times_ns(bars: pd.DataFrame) -> np.ndarray:
    """Bar labels in UTC ns; daily bars (naive dates) are stamped at 16:00 New York."""
    idx = pd.DatetimeIndex(bars.index)
    if idx.tz is None:
        idx = (idx.normalize() + pd.Timedelta(hours=16)).tz_localize("America/New_York")
    return idx.as_unit("ns").asi8


_EPOCH = dt.date(1970, 1, 1)


def _local_days_ns(t_ns: np.ndarray) -> np.ndarray:
    """New York calendar day numbers (days since 1970-01-01) of UTC nanosecond times."""
    local = pd.DatetimeIndex(np.asarray(t_ns, np.int64).astype("datetime64[ns]")).tz_localize("UTC")
    return local.tz_convert("America/New_York").tz_localize(None).asi8 // NS_PER_DAY


def _local_day(t_ns: int) -> int:
    return int(_local_days_ns(np.array([t_ns]))[0])


class VendorChainSource:
    """``ChainSource`` over vendor chain rows, as-of aligned to spot bars (``data_factory.alignment``).

    At ``ts`` the latest snapshot of the same day at or before ``ts`` is used (``expiries``,
    ``expiry_slice``, ``snapshot``; none when the day has no snapshot yet).  ``marks`` falls back on
    the latest snapshot of any earlier day; a contract missing from that snapshot is marked at the
    BSM price with the IV interpolated in strike from the snapshot's smile of its expiry and type
    (nearest expiry if that one is absent), spot = bar close at ``ts``, ``bid = ask = mid``.
    Expiry slices keep the strikes quoted for both calls and puts.
    """

    def __init__(self, chain: pd.DataFrame, bars: pd.DataFrame, underlying: str, rate: float, div_yield: float, *,
                 max_lag_seconds: float | None = None,
                 max_stale_fraction: float = DEFAULTS.data.chain_max_stale_fraction,
                 source: str = "options file") -> None:
        if chain.empty or bars.empty:
            raise DataError(f"{source}: no option quotes or no bars in the requested range; choose dates in both files")
        self.underlying, self.rate, self.div_yield, self.source = underlying, rate, div_yield, source
        self._limit = float(lag_limit_seconds(underlying) if max_lag_seconds is None else max_lag_seconds)
        q = chain["quote_ns"].to_numpy(np.int64)
        starts = np.flatnonzero(np.r_[True, q[1:] != q[:-1]])
        self._snap_ns, self._bounds = q[starts], np.r_[starts, len(q)]
        self._snaps = pd.DatetimeIndex(self._snap_ns.astype("datetime64[ns]")).tz_localize("UTC")
        self._exp = chain["exp_day"].to_numpy(np.int64)
        self._call = chain["is_call"].to_numpy(bool)
        self._strike = chain["strike"].to_numpy(float)
        self._key = _contract_key(self._exp, self._call, self._strike)
        self._values = {c: chain[c].to_numpy(float) for c in (*VALUE_COLUMNS, "underlying_price")}
        self._bar_ns = bar_times_ns(bars)
        self._bar_close = bars["close"].to_numpy(float)
        bar_index = pd.DatetimeIndex(self._bar_ns.astype("datetime64[ns]")).tz_localize("UTC")
        self.alignment = align_chains(bar_index, self._snaps, underlying, max_lag_seconds=self._limit,
                                      max_stale_fraction=max_stale_fraction, source=source)
        self._bar_day = _local_days_ns(self._bar_ns)
        self._check_underlying_price()
        self._cache: dict[tuple[int, int], dict[str, np.ndarray]] = {}
        self._close_ns: dict[int, int] = {}

    def _check_underlying_price(self) -> None:
        """Each snapshot's underlying price must be near the bar close at its time (within
        ``UNDERLYING_PRICE_GAP`` in log terms): a chain of another underlying (a QQQ file in an SPY
        run) or of another price scale is refused instead of priced."""
        j = np.searchsorted(self._bar_ns, self._snap_ns, side="right") - 1
        known = j >= 0
        spot = np.where(known, self._bar_close[np.maximum(j, 0)], np.nan)
        quoted = self._values["underlying_price"][self._bounds[:-1]]
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = np.abs(np.log(quoted / spot))
        bad = np.flatnonzero(known & (gap > UNDERLYING_PRICE_GAP))
        if bad.size:
            i = int(bad[0])
            when = pd.Timestamp(int(self._snap_ns[i]), tz="UTC").tz_convert("America/New_York")
            raise DataError(f"{self.source}: quotes at {when:%Y-%m-%d %H:%M} have underlying price {quoted[i]:g} but "
                            f"the {self.underlying} bars close at {spot[i]:g} ({abs(quoted[i] / spot[i] - 1):.0%} "
                            f"apart); pass the {self.underlying} chain file or set --underlying to the chain's symbol")

    def _locate(self, ts: pd.Timestamp) -> tuple[int, int, float, AlignMode, int]:
        """``(t_ns, snapshot index, lag s, mode, local day number)`` at ``ts``; bar times use the alignment."""
        t = timestamp_ns(ts)
        j = int(np.searchsorted(self._bar_ns, t))
        if j < len(self._bar_ns) and self._bar_ns[j] == t:
            a = self.alignment
            return t, int(a.snap_index[j]), float(a.lag_seconds[j]), MODE_CODES[int(a.mode_code[j])], int(
                self._bar_day[j])
        idx, lag, code = classify(pd.DatetimeIndex([t]).tz_localize("UTC"), self._snaps, self._limit)
        return t, int(idx[0]), float(lag[0]), MODE_CODES[int(code[0])], _local_day(t)

    def quote_confidence(self, ts: pd.Timestamp) -> float:
        """``iv_conf = 0.5 ** (lag / 300)`` of the chain used at ``ts`` (0 when there is none)."""
        _, _, lag, mode, _ = self._locate(ts)
        return 0.0 if mode is AlignMode.NONE else float(0.5 ** (lag / 300.0))

    def _spot(self, t_ns: int, snap: int) -> float:
        j = int(np.searchsorted(self._bar_ns, t_ns, side="right")) - 1
        if j >= 0:
            return float(self._bar_close[j])
        return float(self._values["underlying_price"][self._bounds[snap]]) if snap >= 0 else float("nan")

    def _tau(self, t_ns: int, exp_day: int) -> float:
        if exp_day not in self._close_ns:
            self._close_ns[exp_day] = int(expiry_close_ns(np.array([exp_day]))[0])
        return max(self._close_ns[exp_day] - t_ns, 0) / YEAR_NS

    def _expiry_days(self, snap: int, mode: AlignMode, day: int) -> np.ndarray:
        if mode is AlignMode.NONE:
            return np.zeros(0, np.int64)
        days = np.unique(self._exp[self._bounds[snap]:self._bounds[snap + 1]])
        return days[days >= day]

    def expiries(self, ts: pd.Timestamp) -> list[dt.date]:
        _, snap, _, mode, day = self._locate(ts)
        return [_EPOCH + dt.timedelta(days=int(d)) for d in self._expiry_days(snap, mode, day)]

    def _arrays(self, snap: int, exp_day: int) -> dict[str, np.ndarray]:
        key = (snap, exp_day)
        if key not in self._cache:
            if len(self._cache) > 4096:
                self._cache.clear()
            r0, r1 = self._bounds[snap], self._bounds[snap + 1]
            lo = r0 + int(np.searchsorted(self._exp[r0:r1], exp_day, side="left"))
            hi = r0 + int(np.searchsorted(self._exp[r0:r1], exp_day, side="right"))
            mid = lo + int(np.searchsorted(self._call[lo:hi], True))  # puts sort before calls
            strikes, ip, ic = np.intersect1d(self._strike[lo:mid], self._strike[mid:hi], assume_unique=True,
                                             return_indices=True)
            arrays = {"strikes": strikes}
            for name, col in SIDE_FIELDS.items():
                arrays["put_" + name] = self._values[col][lo:mid][ip]
                arrays["call_" + name] = self._values[col][mid:hi][ic]
            self._cache[key] = arrays
        return self._cache[key]

    def _slice(self, t: int, day: int, snap: int, exp_day: int) -> ExpirySlice:
        arrays = self._arrays(snap, exp_day)
        expiry = _EPOCH + dt.timedelta(days=exp_day)
        return ExpirySlice(expiry=expiry, dte=exp_day - day, tau=self._tau(t, exp_day), **arrays)

    def expiry_slice(self, ts: pd.Timestamp, expiry: dt.date) -> ExpirySlice:
        t, snap, _, mode, day = self._locate(ts)
        exp_day = (expiry - _EPOCH).days
        if mode is AlignMode.NONE or self._arrays(snap, exp_day)["strikes"].size == 0:
            raise DataError(f"{self.source}: no quotes for expiry {expiry} at {pd.Timestamp(ts)}; "
                            "pick one of expiries(ts)")
        return self._slice(t, day, snap, exp_day)

    def snapshot(self, ts: pd.Timestamp, dte_min: int = 0, dte_max: int = 60) -> ChainSnapshot:
        t, snap, _, mode, day = self._locate(ts)
        slices = {}
        for exp_day in self._expiry_days(snap, mode, day):
            if dte_min <= exp_day - day <= dte_max and self._arrays(snap, int(exp_day))["strikes"].size:
                piece = self._slice(t, day, snap, int(exp_day))
                slices[piece.expiry] = piece
        when = pd.Timestamp(t, tz="UTC").tz_convert("America/New_York")
        return ChainSnapshot(self.underlying, when, self._spot(t, snap), slices)

    def marks(self, ts: pd.Timestamp, expiries: np.ndarray, strikes: np.ndarray, is_call: np.ndarray
              ) -> ContractMarks:
        t, snap, _, _, _ = self._locate(ts)
        if snap < 0:
            raise DataError(f"{self.source}: no chain snapshot at or before {pd.Timestamp(ts)}; "
                            "start the run on a day covered by the options file")
        exp_day = np.asarray(expiries, dtype="datetime64[D]").astype(np.int64)
        k, c = np.asarray(strikes, float), np.asarray(is_call, bool)
        r0, r1 = self._bounds[snap], self._bounds[snap + 1]
        key = _contract_key(exp_day, c, k)
        pos = r0 + np.searchsorted(self._key[r0:r1], key)
        found = (pos < r1) & (self._key[np.minimum(pos, len(self._key) - 1)] == key)
        cols = {n: np.where(found, self._values[col][np.minimum(pos, len(self._key) - 1)], np.nan)
                for n, col in SIDE_FIELDS.items()}
        miss = ~found
        if miss.any():
            iv = self._smile_iv(snap, exp_day[miss], k[miss], c[miss])
            tau = np.array([self._tau(t, int(e)) for e in exp_day[miss]])
            g = bsm_greeks(self._spot(t, snap), k[miss], tau, self.rate, self.div_yield, iv, c[miss])
            for n, v in (("bid", g.price), ("ask", g.price), ("iv", iv), ("delta", g.delta), ("gamma", g.gamma),
                         ("theta", g.theta), ("vega", g.vega)):
                cols[n][miss] = v
        mid = 0.5 * (cols["bid"] + cols["ask"])
        return ContractMarks(cols["bid"], cols["ask"], mid, cols["iv"], cols["delta"], cols["gamma"],
                             cols["theta"], cols["vega"])

    def _smile_iv(self, snap: int, exp_day: np.ndarray, strikes: np.ndarray, is_call: np.ndarray) -> np.ndarray:
        """IV interpolated in strike from the snapshot's smile (same type; nearest listed expiry)."""
        r0, r1 = self._bounds[snap], self._bounds[snap + 1]
        listed = np.unique(self._exp[r0:r1])
        iv = self._values["implied_volatility"][r0:r1]
        out = np.full(len(strikes), np.nan)
        for e, c in set(zip(exp_day.tolist(), is_call.tolist(), strict=True)):
            near = listed[np.argmin(np.abs(listed - e))]
            rows = (self._exp[r0:r1] == near) & np.isfinite(iv)
            same = rows & (self._call[r0:r1] == c)
            rows = same if same.any() else rows
            want = (exp_day == e) & (is_call == c)
            if rows.any():
                out[want] = np.interp(strikes[want], self._strike[r0:r1][rows], iv[rows])
        return out
