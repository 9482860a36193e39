"""The fast evaluation: the same driver, the same ``decide()``, only on bars where something can happen.

The reference backtest (``core.backtest.run.run_backtest``) lets Backtrader call
``BacktestDriver.on_bar(i)`` for every base bar.  Between two bars where something can happen
the account does not change, so this module calls the very same ``on_bar`` only on

* the first traded bar, the last bar of the data and every entry bar
  (``strategies.decide.is_entry_bar``) — except while the book is full (``max_positions``
  open), when an entry bar can only decide SKIP;
* every bar where an exit rule *might* fire for an open position (the expiry day included:
  settlement is the venue's), the daily drawdown stop *might* trip, delivered shares wait to
  be sold at a session's open, or an ex-dividend date makes early assignment possible —
  found with array code over each position's precomputed mark path (the driver's ``Marker``
  marks a position's whole remaining life at entry).  The test is a superset with a small
  tolerance: a bar it flags is handed to the real ``decide()``, which has the last word, so
  the exit logic is never re-implemented here;

sets the start-of-day equity and the drawdown latch of sessions that began on a skipped bar as
the driver does on a session's first bar, and fills the per-bar record (cash, positions at
mark, equity, Greeks, open positions) of the skipped bars with the same floating-point
operations, in the same order, as ``BacktestDriver._record``.  Closed trades and equity
therefore equal the reference's to the bit; ``tests/test_optimize_fast.py`` proves it on
configurations that exercise every exit, the drawdown stop and the risk caps, and the
optimizer re-checks a random sample of its
evaluations against ``run_backtest`` in every run.  The one difference: the decision log of a
fast run lacks the SKIP rows of entry bars skipped while the book was full (nothing reads
them: the optimizer scores equity and trades).

A configuration this cannot reproduce exactly falls back to the reference (``run_backtest``) and
says why (``fast_path_problem``): the delta hedge (it may trade on any bar), entries on every
bar, a chain source without whole-path marks (vendor files).

``CachedChains`` memoises the chain source (expiry slices at entry times, mark paths of
positions) for every evaluation a worker runs: deterministic functions of their arguments,
so caching changes speed, never results.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analytics.metrics import daily_closes, daily_returns, fitness, max_drawdown, sharpe_ratio
from core.backtest.driver import BacktestDriver, Marker
from core.backtest.recorder import Recorder
from core.backtest.run import BacktestInputs, build_features, ex_dividend_schedule, load_inputs, run_backtest
from core.backtest.snapshot import SnapshotBuilder
from core.broker.sim import SimBroker
from core.config import AppConfig
from core.dto import CONTRACT_MULTIPLIER, ExitReason, FeatureSet, OptionRight, Regime
from strategies.decide import is_entry_bar

EXIT_TOL = 1e-7  # per share of one unit: superset margin of the exit pre-test (decide() has the last word)
DD_TOL = 1e-6  # fraction of start-of-day equity: superset margin of the drawdown pre-test
_CRASH_CODE = float(list(Regime).index(Regime.CRASH_MODE))


# ---------------------------------------------------------------------------------------
# the chain source, memoised for a worker's whole life


class CachedChains:
    """A ``ChainSource`` that remembers expiry lists, expiry slices and whole-path marks.

    Slices are kept without bound (a year of entry bars is a few hundred slices of about
    30 kB); mark paths (about 0.5 MB each) in an LRU bounded by ``path_bytes``."""

    def __init__(self, inner: Any, path_bytes: int = 256 * 2**20) -> None:
        self.inner = inner
        self._expiries: dict[int, list[dt.date]] = {}
        self._slices: dict[tuple[int, dt.date], Any] = {}
        self._paths: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._path_bytes = 0
        self._path_limit = int(path_bytes)
        self.hits = 0
        self.misses = 0
        if callable(getattr(inner, "marks_path", None)):
            self.marks_path = self._marks_path

    def __getattr__(self, name: str) -> Any:  # everything not memoised: the source itself
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @staticmethod
    def _key(ts: Any) -> int:
        return int(pd.Timestamp(ts).value)

    def expiries(self, ts: pd.Timestamp) -> list[dt.date]:
        k = self._key(ts)
        hit = self._expiries.get(k)
        if hit is None:
            hit = self._expiries[k] = list(self.inner.expiries(ts))
        return list(hit)

    def expiry_slice(self, ts: pd.Timestamp, expiry: dt.date) -> Any:
        k = (self._key(ts), expiry)
        hit = self._slices.get(k)
        if hit is None:
            hit = self._slices[k] = self.inner.expiry_slice(ts, expiry)
        return hit

    def marks(self, ts: pd.Timestamp, expiries: np.ndarray, strikes: np.ndarray, is_call: np.ndarray) -> Any:
        return self.inner.marks(ts, expiries, strikes, is_call)

    def _marks_path(self, index: pd.DatetimeIndex, expiries: np.ndarray, strikes: np.ndarray,
                    is_call: np.ndarray) -> Any:
        idx = pd.DatetimeIndex(index)
        key = (int(idx.asi8[0]) if len(idx) else 0, len(idx), np.asarray(expiries).tobytes(),
               np.asarray(strikes, float).tobytes(), np.asarray(is_call, bool).tobytes())
        hit = self._paths.get(key)
        if hit is not None:
            self._paths.move_to_end(key)
            self.hits += 1
            return hit[0]
        self.misses += 1
        m = self.inner.marks_path(idx, expiries, strikes, is_call)
        size = 0
        for f in dataclasses.fields(m):
            arr = getattr(m, f.name)
            if isinstance(arr, np.ndarray):
                arr.flags.writeable = False  # shared by every later evaluation: read-only
                size += arr.nbytes
        self._paths[key] = (m, size)
        self._path_bytes += size
        while self._path_bytes > self._path_limit and len(self._paths) > 1:
            _, (_, old) = self._paths.popitem(last=False)
            self._path_bytes -= old
        return m



# ---------------------------------------------------------------------------------------
# what a worker holds once: inputs, features per feature-relevant config, the cached chains

# config fields that only the decision core, the venue or the optimizer read (never the market
# data or the features): everything else is part of the feature key, so a field added later is
# on the safe side (features rebuilt) by default
DECISION_ONLY: dict[str, tuple[str, ...] | None] = {
    "run": ("out", "no_plot", "debug", "progress"),
    "backtest": ("cash", "entry_time", "entry_every_bar", "fill_model", "fill_fraction", "commission_per_contract",
                 "reg_fee_per_contract", "assignment_close"),
    "strategy": ("quantity", "dte_min", "dte_max", "delta_low", "delta_high", "target_delta", "wing_min", "wing_max",
                 "min_credit_ratio", "max_positions", "max_alloc", "use_skew_penalty", "max_breach_prob",
                 "structure"),
    "exits": None,
    "filters": ("ivr_min", "vix_max", "max_volatility_pct", "use_vrp_gate", "liquidity_gate", "max_rel_spread",
                "min_volume", "min_open_interest"),
    "fuzzy": ("use_fuzzy", "dynamic_sizing", "position_size_pct", "max_contracts", "score_threshold"),
    "risk": None,
    "hedge": None,
    "gates": ("use_gap_gate", "max_gap_pct", "ratio_z_threshold", "use_regime_gate"),
    "optimizer": None,
    "live": None,
}


def feature_key(cfg: AppConfig) -> str:
    """Canonical JSON of every config value that may change the inputs or the features."""
    import json

    tree = cfg.to_json_dict()
    for section, names in DECISION_ONLY.items():
        if section not in tree:
            continue
        if names is None:
            tree.pop(section)
        else:
            for name in names:
                tree[section].pop(name, None)
    return json.dumps(tree, sort_keys=True, separators=(",", ":"), default=str)


class SharedData:
    """A worker's read-only market: loaded once, features built once per feature key, chains memoised."""

    def __init__(self, cfg: AppConfig, inputs: BacktestInputs | None = None, feature_cache: int = 8) -> None:
        raw = inputs if inputs is not None else load_inputs(cfg)
        self.chains = CachedChains(raw.chains)
        self.inputs = dataclasses.replace(raw, chains=self.chains)
        self.data_key = _data_key(cfg)
        self._features: OrderedDict[str, FeatureSet] = OrderedDict()
        self._feature_cache = feature_cache
        self._exdiv: dict[float, dict[dt.date, float]] = {}
        idx = pd.DatetimeIndex(self.inputs.bars.index)
        self.index = idx
        self.open_ = self.inputs.bars["open"].to_numpy(float)
        self._builders: dict[tuple[str, int, str], SnapshotBuilder] = {}
        self.stamps = list(idx)
        local = idx.tz_localize(None) if idx.tz is not None else idx
        self.dates = np.array([d.date() for d in local.normalize()])
        self.day_ord = np.array([d.toordinal() for d in self.dates], dtype=np.int64)
        self.first_of_day = np.r_[True, self.dates[1:] != self.dates[:-1]]
        starts = np.flatnonzero(self.first_of_day)
        self.day_start = np.repeat(starts, np.diff(np.r_[starts, len(self.dates)]))
        self.last_of_day = np.r_[self.dates[1:] != self.dates[:-1], True]
        self.hm = np.asarray(local.hour * 60 + local.minute, dtype=np.int64)
        self.close = self.inputs.bars["close"].to_numpy(float)

    def features(self, cfg: AppConfig) -> FeatureSet:
        key = feature_key(cfg)
        hit = self._features.get(key)
        if hit is None:
            hit = build_features(cfg, self.inputs)
            self._features[key] = hit
            if len(self._features) > self._feature_cache:
                self._features.popitem(last=False)
        else:
            self._features.move_to_end(key)
        return hit

    def builder(self, cfg: AppConfig, features: FeatureSet) -> SnapshotBuilder:
        """The snapshot builder of ``BacktestDriver.__init__``, built once per features and venue facts."""
        key = (repr(cfg.data.dividend_yield), cfg.backtest.bar_minutes, cfg.strategy.underlying)
        hit = self._builders.get(key)
        if hit is None:
            hit = SnapshotBuilder(self.inputs.bars, features, self.inputs.chains, cfg.backtest.bar_minutes,
                                  cfg.strategy.underlying, self.ex_dividend(cfg))
            self._builders[key] = hit
        if hit.features is features:
            return hit
        # everything a builder derives from the bars is independent of the features: share it,
        # only the feature rows differ (the builder's one use of ``features``)
        other = copy.copy(hit)
        other.features = features
        return other

    def ex_dividend(self, cfg: AppConfig) -> dict[dt.date, float]:
        y = cfg.data.dividend_yield
        if y not in self._exdiv:
            self._exdiv[y] = ex_dividend_schedule(self.inputs.daily, y)
        return self._exdiv[y]

    def entry_mask(self, cfg: AppConfig) -> np.ndarray:
        """Bars on which ``decide`` considers an entry (asked of ``is_entry_bar`` itself, once per
        distinct time of day)."""
        out = np.zeros(len(self.stamps), bool)
        for hm in np.unique(self.hm):
            k = int(np.flatnonzero(self.hm == hm)[0])
            if is_entry_bar(self.stamps[k].to_pydatetime(), cfg):
                out |= self.hm == hm
        return out


def new_driver(cfg: AppConfig, shared: SharedData, features: FeatureSet) -> BacktestDriver:
    """A fresh ``BacktestDriver`` exactly as its ``__init__`` builds one, but reusing the worker's
    ``SnapshotBuilder`` (timestamps boxed once per worker, not once per evaluation).
    ``tests/test_optimize_fast.py`` checks that the attributes match a constructed driver's."""
    inputs = shared.inputs
    d = object.__new__(BacktestDriver)
    d.cfg = cfg
    d.index = shared.index
    d.close = shared.close
    d.open_ = shared.open_
    d.features = features
    d.chains = inputs.chains
    d.first_bar = inputs.first_bar
    d.builder = shared.builder(cfg, features)
    d.broker = SimBroker.from_config(cfg.backtest)
    d.marker = Marker(inputs.chains, shared.index, d.builder.dates)
    d.recorder = Recorder(len(shared.index))
    d._marks = {}
    d._sod_equity = float(cfg.backtest.cash)
    d._halted = False
    d._seq = 0
    return d


def _data_key(cfg: AppConfig) -> str:
    import json

    d = cfg.to_json_dict()
    return json.dumps({"data": d["data"], "seed": d["run"]["seed"], "bt": {k: d["backtest"][k] for k in
                       ("start", "end", "bar_minutes", "samples")}, "underlying": d["strategy"]["underlying"],
                       "mtf": d["mtf"], "ratio": d["gates"]["use_ratio_bias"]}, sort_keys=True, default=str)


# ---------------------------------------------------------------------------------------
# one evaluation


def fast_path_problem(cfg: AppConfig, shared: SharedData) -> str:
    """Why the fast path cannot reproduce this configuration exactly ('' when it can)."""
    if cfg.hedge.enable_hedge:
        return "the delta hedge may trade on any bar"
    if cfg.backtest.entry_every_bar:
        return "entries are checked on every bar"
    if getattr(cfg.gates, "event_close_sessions", None) is not None:
        return "positions close ahead of scheduled events (gates.event_close_sessions)"
    if not callable(getattr(shared.inputs.chains, "marks_path", None)):
        return "the chain source has no whole-path marks"
    return ""


@dataclass(slots=True)
class RunOutcome:
    """What one evaluation produced, engine-agnostic (fast or reference)."""

    driver: BacktestDriver
    first_bar: int
    path: str  # "fast" | "reference"
    why: str = ""  # why the reference was used
    bars_visited: int = 0


def run_fast(cfg: AppConfig, shared: SharedData, features: FeatureSet | None = None) -> RunOutcome:
    """One backtest of ``cfg`` on the worker's shared market: fast when possible, else the reference."""
    features = features if features is not None else shared.features(cfg)
    why = fast_path_problem(cfg, shared)
    if why:
        res = run_backtest(cfg, inputs=shared.inputs, features=features, progress=False)
        return RunOutcome(res.driver, shared.inputs.first_bar, "reference", why, len(shared.stamps))
    inputs = shared.inputs
    driver = new_driver(cfg, shared, features)
    n, first = len(shared.stamps), inputs.first_bar
    forced = shared.entry_mask(cfg)
    forced[:first] = False
    forced[first] = True
    forced[n - 1] = True
    forced_idx = np.flatnonzero(forced)
    ctx = _ExitContext(cfg, features, shared)
    ctx.exdiv_eve = shared.last_of_day & np.isin(shared.dates, list(driver.builder.next_ex))
    max_positions = cfg.strategy.max_positions
    i, visited = first, 0
    while i < n:
        driver.on_bar(i)
        visited += 1
        j = int(np.searchsorted(forced_idx, i, side="right"))
        nxt = int(forced_idx[j]) if j < len(forced_idx) else n
        if len(driver.broker.positions) >= max_positions and i < n - 1:
            # a full book: an entry bar can only decide SKIP (max positions or the drawdown stop),
            # which changes nothing, so only exits, sessions and the data's end are looked for
            nxt = n - 1
        if nxt > i + 1:
            nxt = _skip(driver, ctx, i, nxt)
            _new_sessions(driver, ctx, i + 1, nxt)
        i = nxt
    driver.finish()
    return RunOutcome(driver, first, "fast", "", visited)


@dataclass(slots=True)
class _ExitContext:
    cfg: AppConfig
    features: FeatureSet
    shared: SharedData
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    exdiv_eve: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # last bar before an ex-div date
    paths: dict[str, _PositionPath | None] = field(default_factory=dict)

    def position_path(self, driver: BacktestDriver, pid: str, pos: Any) -> _PositionPath | None:
        if pid not in self.paths:
            self.paths[pid] = _position_path(driver, self, pid, pos)
        return self.paths[pid]

    def feature(self, name: str) -> np.ndarray:
        arr = self.arrays.get(name)
        if arr is None:
            arr = self.arrays[name] = _feature_array(self.features, name)
        return arr


def _feature_array(features: FeatureSet, name: str) -> np.ndarray:
    return np.asarray(features.columns[name], float)


def _skip(driver: BacktestDriver, ctx: _ExitContext, i: int, nxt: int) -> int:
    """Bars ``i+1 .. nxt-1`` change nothing unless an exit or the drawdown stop might fire there.
    Returns the first bar that must be visited (the first such bar, or ``nxt``) after filling the
    record of the bars before it."""
    a, b = i + 1, nxt
    broker = driver.broker
    parts = []
    for pid, op in broker.positions.items():
        pp = ctx.position_path(driver, pid, op.position)
        if pp is None:
            return a  # no whole-life path for it: visit every bar
        if pp.start + len(pp.value) < b:
            b = pp.start + len(pp.value)  # the path ends inside the window: visit from its end on
            if b <= a:
                return a
        parts.append(pp)
    shared = ctx.shared
    if getattr(broker, "_pending", True):  # delivered shares are sold at the next session's first bar
        candidate_days = shared.first_of_day[a:b]
        hits = np.flatnonzero(candidate_days)
        if len(hits):
            b = a + int(hits[0]) + 1
    shares, cash = broker.shares, broker.cash
    close = shared.close[a:b]
    value = np.zeros(b - a)
    greeks = np.zeros((b - a, 4))
    candidate = np.zeros(b - a, bool)
    for pp in parts:
        lo, hi = a - pp.start, b - pp.start
        value = value + pp.value[lo:hi]  # 0.0 + v1 + v2 ... in book order, as BacktestDriver._record
        greeks += pp.greeks[lo:hi]
        candidate |= pp.may_exit[lo:hi]
    if parts:
        candidate |= ctx.exdiv_eve[a:b]  # early assignment before an ex-dividend date: the venue's call
    if getattr(broker, "_pending", True):
        candidate |= shared.first_of_day[a:b]
    greeks[:, 0] += shares
    positions_value = value + shares * close
    equity = cash + positions_value
    if parts or shares:
        candidate |= _drawdown_may_trip(driver, ctx, equity, a, b)
    hits = np.flatnonzero(candidate)
    stop = a + int(hits[0]) if len(hits) else b
    k = stop - a
    r = driver.rec
    r.cash[a:stop] = cash
    r.positions_value[a:stop] = positions_value[:k]
    r.equity[a:stop] = equity[:k]
    r.open_positions[a:stop] = len(broker.positions)
    r.greeks[a:stop] = greeks[:k]
    return stop


@dataclass(frozen=True, slots=True)
class _PositionPath:
    start: int  # bar of the path's first row
    value: np.ndarray  # dollars at mid per bar (Marker.start_path's totals, same operands)
    greeks: np.ndarray  # (bars, 4) delta, gamma, vega, theta in dollars
    may_exit: np.ndarray  # bars where some exit rule may fire (superset)


def _position_path(driver: BacktestDriver, ctx: _ExitContext, pid: str, pos: Any) -> _PositionPath | None:
    path = driver.marker.paths.get(pid)
    if path is None:
        return None
    start, lm = path
    w = np.array(pos.signed_qty, float) * CONTRACT_MULTIPLIER
    # the same operands and shapes as Marker.start_path: bitwise the same totals
    value = lm.mid @ w
    greeks = np.stack([lm.delta @ w, lm.gamma @ w, lm.vega @ w, lm.theta @ w], axis=1)
    may_exit = _exit_may_fire(pos, lm.mid, start, start + len(value), ctx)
    return _PositionPath(start, value, greeks, may_exit)


def _exit_may_fire(pos: Any, mid: np.ndarray, a: int, b: int, ctx: _ExitContext) -> np.ndarray:
    """Bars of ``a .. b-1`` where some exit rule of ``strategies.exits`` may fire (a superset:
    every threshold is widened by ``EXIT_TOL``; the expiry day is always visited)."""
    cfg = ctx.cfg
    e = cfg.exits
    sq = np.array(pos.signed_qty, float)
    mark_debit = -(mid @ sq) / pos.qty
    credit = pos.credit
    out = np.zeros(b - a, bool)
    basis = _max_profit_basis(pos)
    if basis == "unknown":
        return ~out  # the decision core's basis rule is not readable here: visit every bar
    if basis is not None:  # a credit structure whose max profit is not its credit (broken-wing butterfly)
        mp = float(basis)
        if e.profit_target:
            out |= (credit - mark_debit) >= e.profit_pct * mp - EXIT_TOL
        out |= (mark_debit - credit) >= e.loss_multiple * mp - EXIT_TOL
    else:
        if e.profit_target:
            if credit > 0:
                out |= mark_debit <= credit * (1.0 - e.profit_pct) + EXIT_TOL
            else:
                out |= (credit - mark_debit) >= e.profit_pct * -credit - EXIT_TOL
        out |= (mark_debit - credit) >= e.loss_multiple * abs(credit) - EXIT_TOL
    if cfg.gates.use_regime_gate:
        out |= ctx.feature("regime_code")[a:b] == _CRASH_CODE
    day = ctx.shared.day_ord[a:b]
    dte = pos.front_expiry.toordinal() - day
    out |= dte < e.dte_exit
    out |= (day - pos.opened_at.date().toordinal()) >= e.max_hold_days
    if e.breakout_exit:
        spot = ctx.shared.close[a:b]
        upper, lower = ctx.feature("bb_upper")[a:b], ctx.feature("bb_lower")[a:b]
        calls, puts = pos.short_strikes(OptionRight.CALL), pos.short_strikes(OptionRight.PUT)
        if calls:
            out |= (spot > upper) & (spot > min(calls))
        if puts:
            out |= (spot < lower) & (spot < max(puts))
    out |= dte <= 0  # expiry day: the expiring-today rule and settlement are the driver's
    return out


def _max_profit_basis(pos: Any) -> float | None | str:
    """The profit/stop basis ``strategies.decide`` uses for this position (None: the credit or
    debit); "unknown" when the decision core no longer exposes it."""
    import strategies.decide as core_decide

    fn = getattr(core_decide, "_max_profit_basis", None)
    if fn is None:
        return None if not hasattr(core_decide, "SPECS") else "unknown"
    return fn(pos)


def _drawdown_may_trip(driver: BacktestDriver, ctx: _ExitContext, equity: np.ndarray, a: int, b: int) -> np.ndarray:
    """Bars where ``(E_sod - E) / E_sod >= limit`` may hold (the halted latch is ignored: superset).

    ``E_sod`` of a bar is the equity recorded on the bar before its session's first bar (the
    driver's rule), taken from the record before the window and from ``equity`` inside it."""
    first = driver.first_bar
    before = np.maximum(ctx.shared.day_start[a:b], first) - 1
    rec = driver.rec.equity
    inside = before >= a
    sod = np.where(inside, equity[np.clip(before - a, 0, len(equity) - 1)], rec[np.maximum(before, 0)])
    sod = np.where(before < first, float(ctx.cfg.backtest.cash), sod)
    bad = ~np.isfinite(sod) | (sod <= 0)
    dd = (sod - equity) / np.where(bad, 1.0, sod)
    return bad | (dd >= ctx.cfg.risk.max_daily_drawdown - DD_TOL)


def _new_sessions(driver: BacktestDriver, ctx: _ExitContext, a: int, stop: int) -> None:
    """Sessions that began on a skipped bar: the start-of-day equity and the drawdown latch the
    driver sets on a session's first bar (``BacktestDriver.on_bar``)."""
    starts = np.flatnonzero(ctx.shared.first_of_day[a:stop])
    if len(starts):
        d0 = a + int(starts[-1])
        driver._sod_equity = float(driver.rec.equity[d0 - 1]) if d0 > driver.first_bar else driver.broker.cash
        driver._halted = False


# ---------------------------------------------------------------------------------------
# scoring


WORST_FITNESS = -1.0e9  # fewer trades than --min-trades, or an invalid parameter set


@dataclass(frozen=True, slots=True)
class Score:
    fitness: float  # guarded: WORST_FITNESS below the trade minimum
    raw_fitness: float  # net / |max DD| (analytics.metrics.fitness) before the guard
    net: float
    max_dd: float
    sharpe: float | None
    trades: int
    guard: str  # "" or why the guard applied
    days: tuple[str, ...]  # session dates of ``daily``
    daily: tuple[float, ...]  # daily returns (fractions of the previous close)
    daily_pnl: tuple[float, ...]  # daily P&L in dollars (change of the session's closing equity)
    path: str
    why: str


def score_outcome(out: RunOutcome, cfg: AppConfig, min_trades: int) -> Score:
    rec = out.driver.rec
    idx = pd.DatetimeIndex(out.driver.index[out.first_bar:])
    eq = pd.Series(rec.equity[out.first_bar:], index=idx)
    cash = float(cfg.backtest.cash)
    net = float(eq.iloc[-1]) - cash if len(eq) else 0.0
    dd_usd, _ = max_drawdown(eq, cash)
    rets = daily_returns(eq, cash) if len(eq) else pd.Series(dtype=float)
    trades = len(out.driver.broker.closed)
    raw = fitness(net, dd_usd, cash)
    guard = f"{trades} trades < --min-trades {min_trades}" if trades < min_trades else ""
    sharpe = sharpe_ratio(rets)
    closes = daily_closes(eq).to_numpy(float) if len(eq) else np.zeros(0)
    pnl = np.diff(np.r_[cash, closes])
    return Score(WORST_FITNESS if guard else raw, raw, net, dd_usd, sharpe, trades, guard,
                 tuple(d.strftime("%Y-%m-%d") for d in pd.DatetimeIndex(rets.index)),
                 tuple(float(x) for x in rets.to_numpy(float)), tuple(float(x) for x in pnl), out.path, out.why)


def trades_table(out: RunOutcome) -> list[tuple[Any, ...]]:
    """Closed positions in cents: the equality the tests and the run's verification compare."""
    rows = []
    for t in out.driver.broker.closed:
        p = t.position
        rows.append((p.position_id, p.structure.value, str(p.opened_at), str(t.exit_time),
                     tuple((leg.contract.occ_symbol, leg.qty, round(leg.entry_price, 4)) for leg in p.legs),
                     round(p.credit, 4), tuple(round(x, 4) for x in t.exit_prices),
                     round(t.pnl, 2), round(t.share_pnl, 2), t.exit_reason.value if isinstance(t.exit_reason,
                                                                                               ExitReason) else
                     str(t.exit_reason)))
    return rows


def reference_outcome(cfg: AppConfig, shared: SharedData | None = None) -> RunOutcome:
    """The Backtrader-driven reference on fresh inputs (or the shared ones)."""
    if shared is None:
        res = run_backtest(cfg, progress=False)
        return RunOutcome(res.driver, res.inputs.first_bar, "reference", "reference run", len(res.inputs.bars))
    res = run_backtest(cfg, inputs=shared.inputs, features=shared.features(cfg), progress=False)
    return RunOutcome(res.driver, shared.inputs.first_bar, "reference", "reference run", len(shared.stamps))


def same_outcome(a: RunOutcome, b: RunOutcome) -> str:
    """'' when both runs closed the same positions at the same prices and P&L (to the cent) and
    marked the same equity (to the cent) on every bar; else the first difference."""
    ta, tb = trades_table(a), trades_table(b)
    if len(ta) != len(tb):
        return f"{len(ta)} closed positions vs {len(tb)}"
    for x, y in zip(ta, tb, strict=True):
        if x != y:
            return f"position differs: {x} vs {y}"
    ea = a.driver.rec.equity[a.first_bar:]
    eb = b.driver.rec.equity[b.first_bar:]
    if len(ea) != len(eb):
        return f"{len(ea)} equity bars vs {len(eb)}"
    diff = np.abs(np.round(ea, 2) - np.round(eb, 2))
    if np.any(diff > 0.0):
        k = int(np.argmax(diff))
        return f"equity differs at bar {a.first_bar + k}: {ea[k]:.4f} vs {eb[k]:.4f}"
    return ""



def buy_hold_score(cfg: AppConfig, shared: SharedData) -> Score:
    """Buy and hold of the underlying over the traded bars, all cash in at the first close."""
    first = shared.inputs.first_bar
    close = shared.close[first:]
    cash = float(cfg.backtest.cash)
    eq = pd.Series(cash * close / close[0], index=shared.index[first:])
    net = float(eq.iloc[-1]) - cash
    dd_usd, _ = max_drawdown(eq, cash)
    rets = daily_returns(eq, cash)
    closes = daily_closes(eq).to_numpy(float)
    return Score(fitness(net, dd_usd, cash), fitness(net, dd_usd, cash), net, dd_usd, sharpe_ratio(rets), 0, "",
                 tuple(d.strftime("%Y-%m-%d") for d in pd.DatetimeIndex(rets.index)),
                 tuple(float(x) for x in rets.to_numpy(float)), tuple(float(x) for x in np.diff(np.r_[cash, closes])),
                 "buy-and-hold", "")
