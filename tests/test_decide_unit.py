"""Unit tests of the decision core ``strategies.decide.decide`` on hand-built snapshots.

No market source and no backtest: every snapshot is built here from a one-bar FeatureSet, a
hand-made expiry slice (Black-Scholes with r = 0 on a $1 strike grid), a StaticChain and a
Book of hand-made positions.  Expected values are worked out from those inputs in the tests.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import math
import pickle
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import numpy as np
import pytest

from core.config import AppConfig, build_config
from core.dto import (
    FEATURE_NAMES,
    Action,
    Bar,
    Book,
    BookPosition,
    ExitReason,
    ExpirySlice,
    FeatureSet,
    Leg,
    LegMarks,
    LegRole,
    MarketSnapshot,
    OptionContract,
    OptionRight,
    Position,
    ReasonCode,
    Regime,
    SessionFacts,
    Side,
    StaticChain,
    Structure,
    TradeDecision,
)
from strategies.decide import decide
from strategies.sizing import size_contracts

DAY = dt.date(2018, 3, 1)
EXPIRY = DAY + dt.timedelta(days=38)  # 2018-04-08, inside the default 30-45 DTE window
ENTRY_TS = dt.datetime(2018, 3, 1, 10, 0)
LATER_TS = dt.datetime(2018, 3, 1, 11, 0)  # not an entry bar: exits, halts and hedges only
SPOT = 260.0
SIGMA = 0.15
HALF_SPREAD = 0.02
CASH = 25_000.0

# ----------------------------------------------------------------------------- builders

DEFAULT_FEATURES: dict[str, float] = {name: math.nan for name in FEATURE_NAMES}
DEFAULT_FEATURES.update(
    vix=15.0, vix_prev_close=15.0, iv_rank=50.0, vrp=0.05, rv_daily=0.12, sigma_star=0.2,
    adx=15.0, rsi=50.0, stoch_k=50.0, bb_upper=275.0, bb_lower=245.0, bb_position=0.5, bb_width=0.1,
    psar_p=0.2, volume_ratio=1.0, sma_distance=0.0, gap=0.0, ratio_z=0.0,
    regime_code=float(list(Regime).index(Regime.LOW_VOL_RANGE)), regime_crash=0.0,
)


def features(mtf_reasons: tuple[str, ...] = (), **overrides: float) -> FeatureSet:
    unknown = set(overrides) - set(FEATURE_NAMES)
    assert not unknown, unknown
    values = {**DEFAULT_FEATURES, **overrides}
    return FeatureSet.from_arrays({k: np.array([v], float) for k, v in values.items()}, mtf_reasons)


def _ncdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def _npdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def make_slice(expiry: dt.date = EXPIRY, day: dt.date = DAY, spot: float = SPOT) -> ExpirySlice:
    """Strikes 230..290 step 1, Black-Scholes (r = 0, sigma 15%) mids, bid/ask = mid -/+ 0.02."""
    dte = (expiry - day).days
    tau = dte / 365.0
    k = np.arange(230.0, 291.0, 1.0)
    sd = SIGMA * math.sqrt(tau)
    d1 = np.log(spot / k) / sd + 0.5 * sd
    d2 = d1 - sd
    call = np.maximum(spot * _ncdf(d1) - k * _ncdf(d2), 0.0) + HALF_SPREAD
    put = np.maximum(k * _ncdf(-d2) - spot * _ncdf(-d1), 0.0) + HALF_SPREAD
    gamma = _npdf(d1) / (spot * sd)
    vega = spot * _npdf(d1) * math.sqrt(tau) * 0.01
    theta = -spot * _npdf(d1) * SIGMA / (2 * math.sqrt(tau)) / 365.0
    big = np.full(k.size, 10_000.0)
    iv = np.full(k.size, SIGMA)
    return ExpirySlice(
        expiry=expiry, dte=dte, tau=tau, strikes=k,
        call_bid=call - HALF_SPREAD, call_ask=call + HALF_SPREAD, call_iv=iv, call_delta=_ncdf(d1),
        call_gamma=gamma, call_theta=theta, call_vega=vega, call_volume=big, call_oi=big.copy(),
        put_bid=put - HALF_SPREAD, put_ask=put + HALF_SPREAD, put_iv=iv.copy(), put_delta=_ncdf(d1) - 1.0,
        put_gamma=gamma.copy(), put_theta=theta.copy(), put_vega=vega.copy(), put_volume=big.copy(),
        put_oi=big.copy(),
    )


def book_position(pid: str = "P1", *, qty: int = 1, credit: float = 1.0, mark: float = 1.0,
                  expiry: dt.date = EXPIRY, opened: dt.date = DAY - dt.timedelta(days=3),
                  strikes: tuple[float, float, float, float] = (245.0, 240.0, 275.0, 280.0),
                  deltas: tuple[float, ...] = (-0.2, -0.1, 0.2, 0.1),
                  vegas: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0), reserved: float = 400.0) -> BookPosition:
    """A condor (short put, long put, short call, long call) marked so that mark_debit == ``mark``:
    the short put is marked at ``mark`` and every other leg at 0."""
    roles = ((LegRole.SHORT_PUT, OptionRight.PUT, Side.SHORT), (LegRole.LONG_PUT, OptionRight.PUT, Side.LONG),
             (LegRole.SHORT_CALL, OptionRight.CALL, Side.SHORT), (LegRole.LONG_CALL, OptionRight.CALL, Side.LONG))
    legs = tuple(Leg(role, OptionContract("SPY", expiry, k, right), side, qty, 0.5)
                 for (role, right, side), k in zip(roles, strikes, strict=True))
    pos = Position(pid, Structure.IRON_CONDOR, legs, qty, dt.datetime.combine(opened, dt.time(10, 0)), credit,
                   5.0 - credit)
    mid = np.array([mark, 0.0, 0.0, 0.0])
    marks = LegMarks(bid=mid - 0.01, ask=mid + 0.01, mid=mid, delta=np.array(deltas, float), gamma=np.zeros(4),
                     vega=np.array(vegas, float), theta=np.zeros(4))
    return BookPosition(pos, marks, reserved)


def make_book(positions: tuple[BookPosition, ...] = (), *, cash: float = CASH, sod: float | None = None,
              halted: bool = False, shares: float = 0.0, hedge_shares: float = 0.0, spot: float = SPOT) -> Book:
    """A book whose start-of-day equity defaults to its current equity (no drawdown)."""
    book = Book(positions, cash, sum(bp.reserved for bp in positions), shares, hedge_shares, spot, 0.0, halted)
    sod = book.equity if sod is None else sod
    return Book(positions, cash, book.reserved, shares, hedge_shares, spot, sod, halted)


def snapshot(*, feats: FeatureSet | None = None, book: Book | None = None, ts: dt.datetime = ENTRY_TS,
             spot: float = SPOT, last_bar: bool = False, slices: tuple[ExpirySlice, ...] | None = None
             ) -> MarketSnapshot:
    bar = Bar(spot, spot, spot, spot, 1e6)
    chain = StaticChain({s.expiry: s for s in (slices if slices is not None else (make_slice(),))})
    session = SessionFacts(ts.date(), 60.0, last_bar, False, None)
    return MarketSnapshot(ts, session, bar, {5: bar}, (feats or features()).row(0), chain,
                          book if book is not None else make_book(spot=spot))


def cfg(**overrides: Any) -> AppConfig:
    return build_config(None, {k.replace("__", "."): v for k, v in overrides.items()})


def only(decisions: tuple[TradeDecision, ...], action: Action) -> TradeDecision:
    found = [d for d in decisions if d.action is action]
    assert len(found) == 1, decisions
    return found[0]


def entry_of(decisions: tuple[TradeDecision, ...]) -> TradeDecision:
    found = [d for d in decisions if d.action in (Action.ENTER, Action.SKIP)]
    assert len(found) == 1, decisions
    return found[0]


# ----------------------------------------------------------- the expected condor, by hand

def expected_condor(sl: ExpirySlice, delta_low: float = 0.10, delta_high: float = 0.25, wing: float = 5.0
                    ) -> dict[str, Any]:
    """Short strikes: |delta| nearest the band's middle inside the band; wings the first listed
    strike at least ``wing`` beyond them (on this $1 grid: ceil(wing) away)."""
    target = 0.5 * (delta_low + delta_high)

    def pick(abs_delta: np.ndarray) -> int:
        ok = (abs_delta >= delta_low) & (abs_delta <= delta_high)
        err = np.where(ok, np.abs(abs_delta - target), np.inf)
        return int(np.argmin(err))

    sp, sc = pick(np.abs(sl.put_delta)), pick(np.abs(sl.call_delta))
    step = math.ceil(wing - 1e-9)
    lp, lc = sp - step, sc + step
    mid_put = 0.5 * (sl.put_bid + sl.put_ask)
    mid_call = 0.5 * (sl.call_bid + sl.call_ask)
    credit = mid_put[sp] + mid_call[sc] - mid_put[lp] - mid_call[lc]
    width = max(sl.strikes[sp] - sl.strikes[lp], sl.strikes[lc] - sl.strikes[sc])

    def net(name: str) -> float:
        p, c = getattr(sl, "put_" + name), getattr(sl, "call_" + name)
        return float(-p[sp] + p[lp] - c[sc] + c[lc])

    return {"idx": (sp, lp, sc, lc), "strikes": tuple(float(sl.strikes[i]) for i in (sp, lp, sc, lc)),
            "mids": (mid_put[sp], mid_put[lp], mid_call[sc], mid_call[lc]), "credit": float(credit),
            "width": float(width), "max_loss": float(width - credit),
            "breach": float(abs(sl.put_delta[sp]) + abs(sl.call_delta[sc])),
            "delta": net("delta"), "vega": net("vega"), "gamma": net("gamma")}


def test_the_hand_made_slice_is_sane() -> None:
    sl = make_slice()
    assert sl.dte == 38
    assert np.all(np.diff(np.abs(sl.put_delta)) > 0) and np.all(np.diff(sl.call_delta) < 0)
    assert np.all(sl.put_bid >= 0) and np.all(sl.call_bid >= 0)
    c = expected_condor(sl)
    # the 0.175-delta shorts of a 15% vol, 38-day SPY at 260
    assert c["strikes"] == (249.0, 244.0, 272.0, 277.0)
    assert 0.15 <= c["credit"] / c["width"] < 1.0
    assert c["breach"] < 0.60


# ------------------------------------------------------------------------------ the gates

# (config overrides, feature overrides) that fail exactly one gate, in the gates' order
GATES: list[tuple[ReasonCode, dict[str, Any], dict[str, float]]] = [
    (ReasonCode.VIX_UNAVAILABLE, {}, {"vix": math.nan}),
    (ReasonCode.VIX_HIGH, {}, {"vix": 30.0}),
    (ReasonCode.IV_RANK_LOW, {"filters__ivr_min": 30.0}, {"iv_rank": 20.0}),
    (ReasonCode.VRP_LOW, {"filters__use_vrp_gate": True}, {"vrp": 0.01}),
    (ReasonCode.REALIZED_VOL_HIGH, {}, {"rv_daily": 0.6}),  # 0.6 / sqrt(252) = 3.8% > 3%
    (ReasonCode.ADX_TREND, {"indicators__use_adx_filter": True}, {"adx": 30.0}),
    (ReasonCode.PSAR_TREND, {"indicators__use_psar_filter": True}, {"psar_p": -1.0}),
    (ReasonCode.GAP, {"gates__use_gap_gate": True}, {"gap": -0.005}),
    (ReasonCode.RATIO_BIAS, {"gates__use_ratio_bias": True}, {"ratio_z": 2.5}),
    (ReasonCode.CRASH_REGIME, {}, {"regime_crash": 1.0}),
    (ReasonCode.MTF_UNAVAILABLE, {"mtf__use_mtf": True}, {"mtf_consensus": math.nan}),
    (ReasonCode.MTF_OUTSIDE_BAND, {"mtf__use_mtf": True}, {"mtf_consensus": 0.7}),
]
PASSING_MTF = {"mtf_consensus": 0.5}


@pytest.mark.parametrize(("code", "conf", "feats"), GATES, ids=[g[0].value for g in GATES])
def test_each_gate_alone_skips_with_its_code(code: ReasonCode, conf: dict[str, Any], feats: dict[str, float]
                                             ) -> None:
    base = {} if "mtf_consensus" in feats else PASSING_MTF
    d = decide(snapshot(feats=features(**{**base, **feats})), cfg(**conf))
    assert len(d) == 1
    assert d[0].action is Action.SKIP and d[0].codes == (code,) and d[0].structure is Structure.IRON_CONDOR
    # the same config with passing features enters
    ok = decide(snapshot(feats=features(**PASSING_MTF)), cfg(**conf))
    assert [x.action for x in ok] == [Action.ENTER]


def test_gate_reason_texts() -> None:
    def reason(conf: dict[str, Any], **f: float) -> str:
        return entry_of(decide(snapshot(feats=features(**f)), cfg(**conf))).reasons[0]

    assert reason({}, vix=30.0) == "VIX 30.00 > vix-max 25"
    assert reason({"filters__ivr_min": 30.0}, iv_rank=20.0) == "IV rank 20.0 < ivr-min 30"
    assert reason({"indicators__use_adx_filter": True}, adx=30.0) == "ADX 30.0 > 25: trending"
    assert reason({"gates__use_gap_gate": True}, gap=-0.005) == "opening gap -0.50% beyond 0.19%"
    assert reason({"gates__use_ratio_bias": True}, ratio_z=-2.5).startswith("SPY/QQQ ratio z -2.50: bullish")
    assert reason({}, regime_crash=1.0) == "regime CRASH_MODE: stand aside"
    assert reason({"mtf__use_mtf": True}, mtf_consensus=0.3) == "MTF consensus 0.30 outside [0.4, 0.6]"


@pytest.mark.parametrize("first", range(len(GATES) - 1))
def test_the_first_failing_gate_wins(first: int) -> None:
    """Every gate from ``first`` on fails (the MTF band one excluded: it shares the consensus
    feature with MTF-unavailable); the decision names the first."""
    conf: dict[str, Any] = {}
    feats: dict[str, float] = {}
    for _, c, f in reversed(GATES[first:-1]):  # the earlier gate's value of a shared feature wins
        conf.update(c)
        feats.update(f)
    d = entry_of(decide(snapshot(feats=features(**feats)), cfg(**conf)))
    assert d.codes == (GATES[first][0],)


def test_gate_boundaries_pass() -> None:
    conf = cfg(indicators__use_adx_filter=True, indicators__use_psar_filter=True, filters__ivr_min=30.0,
               gates__use_gap_gate=True, gates__use_ratio_bias=True, mtf__use_mtf=True)
    f = features(vix=25.0, iv_rank=30.0, adx=25.0, psar_p=0.99, gap=0.0019, ratio_z=2.0, mtf_consensus=0.6,
                 regime_crash=0.99)
    assert entry_of(decide(snapshot(feats=f), conf)).action is Action.ENTER
    # PSAR: |p| >= 1 blocks (the boundary itself is a trend)
    f2 = features(psar_p=1.0)
    assert entry_of(decide(snapshot(feats=f2), cfg(indicators__use_psar_filter=True))).codes == (
        ReasonCode.PSAR_TREND,)


def test_filters_that_are_off_do_not_gate() -> None:
    f = features(adx=60.0, psar_p=3.0, gap=0.05, ratio_z=5.0, mtf_consensus=math.nan, iv_rank=1.0, vrp=-1.0)
    assert entry_of(decide(snapshot(feats=f), cfg())).action is Action.ENTER
    # the regime gate off: a CRASH regime does not stand aside
    f = features(regime_crash=1.0)
    assert entry_of(decide(snapshot(feats=f), cfg(gates__use_regime_gate=False))).action is Action.ENTER
    # use_mtf on but its filter off
    f = features(mtf_consensus=0.9)
    assert entry_of(decide(snapshot(feats=f), cfg(mtf__use_mtf=True, mtf__use_filter=False))).action is Action.ENTER


def test_mtf_unavailable_decodes_the_reason_table() -> None:
    f = features(mtf_reasons=("", "15m bars warming up"), mtf_consensus=math.nan, mtf_reason_code=1.0)
    d = entry_of(decide(snapshot(feats=f), cfg(mtf__use_mtf=True)))
    assert d.codes == (ReasonCode.MTF_UNAVAILABLE,)
    assert d.reasons == ("MTF consensus unavailable: 15m bars warming up",)
    assert isinstance(d.scores.get("_factors"), str)  # the factor log rides along with use_mtf
    f = features(mtf_consensus=math.nan)  # no code: the generic text
    d = entry_of(decide(snapshot(feats=f), cfg(mtf__use_mtf=True)))
    assert d.reasons == ("MTF consensus unavailable: missing timeframe data",)


# ------------------------------------------------------------- book-level entry blocks

def test_max_positions_skips_before_the_gates() -> None:
    book = make_book((book_position("A"), book_position("B")))
    d = decide(snapshot(book=book, feats=features(vix=math.nan)), cfg(strategy__max_positions=2))
    assert [x.action for x in d] == [Action.SKIP]
    assert d[0].codes == (ReasonCode.MAX_POSITIONS,) and d[0].reasons == ("max positions 2 open",)
    # one fewer open: the gate speaks
    d = decide(snapshot(book=make_book((book_position("A"),)), feats=features(vix=math.nan)),
               cfg(strategy__max_positions=2))
    assert d[-1].codes == (ReasonCode.VIX_UNAVAILABLE,)


def test_a_position_closing_this_bar_frees_its_slot() -> None:
    book = make_book((book_position("A", mark=0.4),))  # profit target: 0.4 <= 1.0 x 0.5
    d = decide(snapshot(book=book), cfg(strategy__max_positions=1))
    assert [x.action for x in d] == [Action.EXIT, Action.ENTER]
    assert d[0].exit_reason is ExitReason.PROFIT_TARGET and d[0].position_id == "A"


def test_entry_only_at_entry_time_unless_every_bar() -> None:
    for minute in (55, 5):
        ts = dt.datetime(2018, 3, 1, 9 if minute == 55 else 10, minute)
        assert decide(snapshot(ts=ts), cfg()) == ()
        assert entry_of(decide(snapshot(ts=ts), cfg(backtest__entry_every_bar=True))).action is Action.ENTER
    assert entry_of(decide(snapshot(ts=ENTRY_TS), cfg())).action is Action.ENTER
    ts = dt.datetime(2018, 3, 1, 14, 30)
    assert entry_of(decide(snapshot(ts=ts), cfg(backtest__entry_time="14:30"))).action is Action.ENTER
    assert decide(snapshot(ts=ENTRY_TS), cfg(backtest__entry_time="14:30")) == ()


def test_no_expiry_in_the_window() -> None:
    d = entry_of(decide(snapshot(), cfg(strategy__dte_min=40, strategy__dte_max=45)))
    assert d.codes == (ReasonCode.NO_EXPIRY,) and d.reasons == ("no listed expiry with 40-45 DTE",)


# ------------------------------------------------------------------------- a passing entry

def test_passing_entry_is_an_iron_condor_on_the_delta_band() -> None:
    sl = make_slice()
    c = expected_condor(sl)
    d = decide(snapshot(), cfg())
    assert len(d) == 1
    e = d[0]
    assert e.action is Action.ENTER and e.structure is Structure.IRON_CONDOR and e.codes == (ReasonCode.ENTRY,)
    assert [leg.role for leg in e.legs] == [LegRole.SHORT_PUT, LegRole.LONG_PUT, LegRole.SHORT_CALL,
                                           LegRole.LONG_CALL]
    assert [leg.side for leg in e.legs] == [Side.SHORT, Side.LONG, Side.SHORT, Side.LONG]
    assert [leg.contract.right for leg in e.legs] == [OptionRight.PUT, OptionRight.PUT, OptionRight.CALL,
                                                     OptionRight.CALL]
    assert tuple(leg.contract.strike for leg in e.legs) == c["strikes"] == (249.0, 244.0, 272.0, 277.0)
    assert all(leg.contract.expiry == EXPIRY and leg.qty == 1 and leg.contract.underlying == "SPY"
               for leg in e.legs)
    assert [leg.entry_price for leg in e.legs] == pytest.approx(c["mids"])
    # short legs inside the delta band, wings 5 wide
    assert 0.10 <= abs(sl.put_delta[c["idx"][0]]) <= 0.25 and 0.10 <= sl.call_delta[c["idx"][2]] <= 0.25
    # static sizing: quantity 1 (q_alloc = floor(3750 / max loss) >= 1; Q_risk = floor(500 / max loss))
    per = c["max_loss"] * 100
    assert e.qty == 1 == min(1, math.floor(CASH * 0.15 / per), math.floor(CASH * 0.02 / per))
    assert e.scores["credit_ratio"] == pytest.approx(c["credit"] / 5.0)
    assert e.scores["breach_prob"] == pytest.approx(c["breach"])
    assert e.scores["max_loss_per_contract"] == pytest.approx(per)
    assert e.scores["q_base"] == 1 and e.scores["q_alloc"] == math.floor(CASH * 0.15 / per + 1e-9)
    assert e.scores["q_final"] == 1 and e.scores["unit_delta"] == pytest.approx(c["delta"])
    assert e.reasons == (f"condor {EXPIRY} 244/249/272/277 credit {c['credit']:.2f} ratio {c['credit'] / 5:.2f} x1",)
    assert e.limit is None


def test_wing_rules_on_the_grid() -> None:
    sl = make_slice()
    # wing_min 5.5: the nearest listed strike at least 5.5 away is 6 away
    e = entry_of(decide(snapshot(), cfg(strategy__wing_min=5.5)))
    c = expected_condor(sl, wing=5.5)
    assert tuple(leg.contract.strike for leg in e.legs) == c["strikes"] == (249.0, 243.0, 272.0, 278.0)
    # wing_max below that: no candidate
    d = entry_of(decide(snapshot(), cfg(strategy__wing_min=5.5, strategy__wing_max=5.5)))
    assert d.codes == (ReasonCode.NO_CANDIDATE,)
    assert d.reasons == (f"{EXPIRY}: nearest put wing 6 wider than wing-max 5.5",)


def test_delta_band_moves_the_shorts() -> None:
    sl = make_slice()
    e = entry_of(decide(snapshot(), cfg(strategy__delta_low=0.25, strategy__delta_high=0.35,
                                        strategy__max_breach_prob=0.9)))
    c = expected_condor(sl, 0.25, 0.35)
    assert tuple(leg.contract.strike for leg in e.legs) == c["strikes"]
    assert 0.25 <= abs(sl.put_delta[c["idx"][0]]) <= 0.35
    assert c["strikes"][0] > 249.0 and c["strikes"][2] < 272.0
    # breach probability ~0.6 > 0.5: no candidate
    d = entry_of(decide(snapshot(), cfg(strategy__delta_low=0.25, strategy__delta_high=0.35,
                                        strategy__max_breach_prob=0.5)))
    assert d.codes == (ReasonCode.NO_CANDIDATE,) and "breach probability" in d.reasons[0]


def test_credit_ratio_floor() -> None:
    c = expected_condor(make_slice())
    ratio = c["credit"] / 5.0
    d = entry_of(decide(snapshot(), cfg(strategy__min_credit_ratio=round(ratio + 0.01, 2))))
    assert d.codes == (ReasonCode.NO_CANDIDATE,) and "credit/width" in d.reasons[0]


# ----------------------------------------------------------------------------- sizing

def test_size_static_and_max_alloc() -> None:
    c = AppConfig().with_overrides({"strategy.quantity": 3})
    # Q_alloc = floor(25000 x 0.15 / 400) = 9 -> min(3, 9) = 3
    assert size_contracts(400.0, 25_000.0, 0.0, math.nan, math.nan, c) == (
        3, {"max_loss_per_contract": 400.0, "q_base": 3, "q_alloc": 9}, "")
    # 3000 already reserved: floor(750 / 400) = 1
    assert size_contracts(400.0, 25_000.0, 3000.0, math.nan, math.nan, c)[0] == 1
    # 3600 reserved: floor(150 / 400) = 0 -> the max-alloc reason
    qty, sizes, why = size_contracts(400.0, 25_000.0, 3600.0, math.nan, math.nan, c)
    assert qty == 0 and sizes["q_alloc"] == 0 and why.startswith("max-alloc 0.15: $3,600 already at risk")
    assert size_contracts(0.0, 25_000.0, 0.0, 0.5, 0.1, c)[0] == 0


def test_size_fuzzy_and_dynamic() -> None:
    fz = cfg(fuzzy__use_fuzzy=True)
    # Q0 = min(5, floor(25000 x 0.05 / 400) = 3) = 3;  g = 0.6;  floor(3 x 0.6) = 1
    qty, sizes, _ = size_contracts(400.0, 25_000.0, 0.0, 0.6, 0.25, fz)
    assert (qty, sizes["q0"], sizes["g"], sizes["q_base"]) == (1, 3, pytest.approx(0.6), 1)
    # equity 100k: Q0 = min(5, 12) = 5; 5 x 0.6 = 3 (the 1e-9 guard: 2.9999...); q_alloc 37
    qty, sizes, _ = size_contracts(400.0, 100_000.0, 0.0, 0.6, 0.25, fz)
    assert (qty, sizes["q0"], sizes["q_alloc"]) == (3, 5, 37)
    # dynamic sizing: g = F (1 - sigma*) = 0.8 x 0.75 = 0.6 -> 3 ; with fuzzy alone sigma* is ignored: 0.8 -> 4
    dyn = cfg(fuzzy__dynamic_sizing=True)
    assert size_contracts(400.0, 100_000.0, 0.0, 0.8, 0.25, dyn)[0] == 3
    assert size_contracts(400.0, 100_000.0, 0.0, 0.8, 0.25, fz)[0] == 4
    # max contracts caps Q0
    assert size_contracts(400.0, 100_000.0, 0.0, 1.0, 0.0, cfg(fuzzy__use_fuzzy=True, fuzzy__max_contracts=2))[0] == 2
    # max_alloc caps the fuzzy size: floor((100000 x 0.01) / 400) = 2
    assert size_contracts(400.0, 100_000.0, 0.0, 1.0, 0.0, cfg(fuzzy__use_fuzzy=True, strategy__max_alloc=0.01)
                          )[0] == 2
    # warm-up and a zero fuzzy size
    assert size_contracts(400.0, 100_000.0, 0.0, math.nan, 0.2, fz) == (
        0, {"max_loss_per_contract": 400.0}, "fuzzy confidence unavailable (warm-up)")
    qty, _, why = size_contracts(400.0, 100_000.0, 0.0, 0.1, 0.0, fz)  # floor(5 x 0.1) = 0
    assert qty == 0 and why == "sizing gives 0 contracts (g 0.100)"


def _roomy(**extra: Any) -> AppConfig:
    return cfg(**{"risk__max_account_risk_per_trade": 0.5, "risk__max_trade_vega": 1e6, "risk__max_trade_delta": 1e6,
                  "risk__max_portfolio_vega": 1e6, "risk__max_portfolio_delta": 1e6,
                  "risk__max_portfolio_gamma": 1e6, **extra})


def test_entry_qty_is_the_sizing_result() -> None:
    c = expected_condor(make_slice())
    per = c["max_loss"] * 100
    e = entry_of(decide(snapshot(), _roomy(strategy__quantity=4)))
    assert e.action is Action.ENTER and e.qty == 4 == e.scores["q_final"] and "risk_cut_from" not in e.scores
    # max_alloc cuts it: floor(25000 x 0.04 / per)
    e = entry_of(decide(snapshot(), _roomy(strategy__quantity=4, strategy__max_alloc=0.04)))
    assert e.qty == math.floor(CASH * 0.04 / per) == 2
    # reserved buying power of a held position counts against max_alloc (cash + 100 offsets its
    # mark of -100, so equity stays 25,000)
    held = book_position("A", reserved=CASH * 0.04 - per)
    book = make_book((held,), cash=CASH + 100.0)
    assert book.equity == CASH
    e = entry_of(decide(snapshot(book=book), _roomy(strategy__quantity=4, strategy__max_alloc=0.04)))
    assert e.qty == 1
    held = book_position("A", reserved=CASH * 0.04 - per + 1.0)
    book = make_book((held,), cash=CASH + 100.0)
    e = entry_of(decide(snapshot(book=book), _roomy(strategy__quantity=4, strategy__max_alloc=0.04)))
    assert e.action is Action.SKIP and e.codes == (ReasonCode.SIZE_ZERO,)
    # fuzzy sizing through decide: Q0 = min(5, floor(25000 x 0.05 / per)); Q = floor(Q0 x F)
    f = features(fuzzy_confidence=0.8, mtf_consensus=0.5)
    e = entry_of(decide(snapshot(feats=f), _roomy(fuzzy__use_fuzzy=True)))
    q0 = min(5, math.floor(CASH * 0.05 / per))
    assert e.action is Action.ENTER and e.qty == math.floor(q0 * 0.8 + 1e-9) and e.scores["q0"] == q0
    # dynamic: sigma* 0.2 -> g = 0.64
    e = entry_of(decide(snapshot(feats=f), _roomy(fuzzy__use_fuzzy=True, fuzzy__dynamic_sizing=True)))
    assert e.scores["g"] == pytest.approx(0.64) and e.qty == math.floor(q0 * 0.64 + 1e-9)


def test_risk_budget_and_caps_cut_the_qty() -> None:
    c = expected_condor(make_slice())
    per = c["max_loss"] * 100
    # Q_risk = floor(25000 x 0.02 / per) = 1 with the default budget
    e = entry_of(decide(snapshot(), cfg(strategy__quantity=5)))
    assert e.qty == math.floor(CASH * 0.02 / per) == 1 and e.scores["risk_cut_from"] == 5
    # trade vega cap: |unit vega| x q <= cap
    unit_vega = abs(c["vega"]) * 100
    conf = _roomy(strategy__quantity=5, risk__max_trade_vega=2.5 * unit_vega)
    e = entry_of(decide(snapshot(), conf))
    assert e.action is Action.ENTER and e.qty == 2 and e.scores["risk_cut_from"] == 5
    # trade delta cap below one unit: blocked
    unit_delta = abs(c["delta"]) * 100
    assert unit_delta > 0
    e = entry_of(decide(snapshot(), _roomy(strategy__quantity=5, risk__max_trade_delta=0.5 * unit_delta)))
    assert e.action is Action.SKIP and e.codes == (ReasonCode.RISK_BLOCK,) and "trade delta" in e.reasons[0]
    # portfolio vega cap with a held position of book vega -60 (short put leg vega 0.6 x -100)
    held = book_position("A", vegas=(0.6, 0.0, 0.0, 0.0))
    conf = _roomy(strategy__quantity=5, risk__max_portfolio_vega=60.0 + 3.5 * unit_vega)
    e = entry_of(decide(snapshot(book=make_book((held,))), conf))
    assert c["vega"] < 0 and e.qty == 3 and e.scores["risk_cut_from"] == 5


# ------------------------------------------------------------------------------ exits

def exits_of(bp: BookPosition, conf: AppConfig | None = None, *, ts: dt.datetime = LATER_TS, last_bar: bool = False,
             spot: float = SPOT, **feats: float) -> list[tuple[ExitReason | None, str]]:
    d = decide(snapshot(book=make_book((bp,), spot=spot), ts=ts, last_bar=last_bar, spot=spot,
                        feats=features(**feats)), conf or cfg())
    return [(x.exit_reason, x.position_id) for x in d if x.action is Action.EXIT]


CRASH = float(list(Regime).index(Regime.CRASH_MODE))


@pytest.mark.parametrize(("kwargs", "spot", "feats", "reason"), [
    ({"mark": 0.5}, SPOT, {}, ExitReason.PROFIT_TARGET),  # 0.5 <= 1.0 x (1 - 0.5)
    ({"mark": 2.5}, SPOT, {}, ExitReason.STOP_LOSS),  # loss 1.5 >= 1.5 x 1.0
    ({}, SPOT, {"regime_code": CRASH}, ExitReason.CRASH_MODE),
    ({"expiry": DAY + dt.timedelta(days=6)}, SPOT, {}, ExitReason.DTE_EXIT),  # 6 < 7
    ({}, 276.0, {}, ExitReason.BREAKOUT),  # above upper band 275 and short call 275
    ({}, 244.0, {}, ExitReason.BREAKOUT),  # below lower band 245 and short put 245
    ({"opened": DAY - dt.timedelta(days=14)}, SPOT, {}, ExitReason.MAX_HOLD),  # 14 >= 14
    ({"mark": 0.51}, SPOT, {}, None),
    ({"mark": 2.49}, SPOT, {}, None),
    ({"expiry": DAY + dt.timedelta(days=7)}, SPOT, {}, None),
    ({"opened": DAY - dt.timedelta(days=13)}, SPOT, {}, None),
    ({}, 275.0, {}, None),  # on the band, not above it
    ({}, 270.0, {"bb_upper": 265.0}, None),  # above the band, below the short call
])
def test_each_exit_rule(kwargs: dict[str, Any], spot: float, feats: dict[str, float],
                        reason: ExitReason | None) -> None:
    got = exits_of(book_position(**kwargs), spot=spot, **feats)
    assert got == ([] if reason is None else [(reason, "P1")])


@pytest.mark.parametrize(("kwargs", "spot", "feats", "reason"), [
    ({"mark": 0.4, "opened": DAY - dt.timedelta(days=20)}, SPOT, {}, ExitReason.PROFIT_TARGET),
    ({"mark": 3.0}, SPOT, {"regime_code": CRASH}, ExitReason.STOP_LOSS),
    ({"expiry": DAY + dt.timedelta(days=3)}, SPOT, {"regime_code": CRASH}, ExitReason.CRASH_MODE),
    ({"expiry": DAY + dt.timedelta(days=3)}, 280.0, {}, ExitReason.DTE_EXIT),
    ({"opened": DAY - dt.timedelta(days=20)}, 280.0, {}, ExitReason.BREAKOUT),
    ({"mark": 0.4}, 280.0, {"regime_code": CRASH}, ExitReason.PROFIT_TARGET),
])
def test_exit_priority(kwargs: dict[str, Any], spot: float, feats: dict[str, float], reason: ExitReason) -> None:
    assert exits_of(book_position(**kwargs), spot=spot, **feats) == [(reason, "P1")]


def test_exit_switches() -> None:
    # profit target off: the next rule (max hold) decides
    bp = book_position(mark=0.4, opened=DAY - dt.timedelta(days=20))
    assert exits_of(bp, cfg(exits__profit_target=False)) == [(ExitReason.MAX_HOLD, "P1")]
    assert exits_of(book_position(mark=0.4), cfg(exits__profit_target=False)) == []
    # crash exit follows the regime gate
    assert exits_of(book_position(), cfg(gates__use_regime_gate=False), regime_code=CRASH) == []
    # breakout off
    assert exits_of(book_position(), cfg(exits__breakout_exit=False), spot=280.0) == []
    # tuned thresholds: 60% target, 2x stop
    assert exits_of(book_position(mark=0.45), cfg(exits__profit_pct=0.6)) == []
    assert exits_of(book_position(mark=0.4), cfg(exits__profit_pct=0.6)) == [(ExitReason.PROFIT_TARGET, "P1")]
    assert exits_of(book_position(mark=2.9), cfg(exits__loss_multiple=2.0)) == []


def test_exit_decision_fields_and_book_order() -> None:
    a = book_position("A", qty=2, mark=0.3)
    b = book_position("B")
    c = book_position("C", mark=3.0)
    d = decide(snapshot(book=make_book((a, b, c)), ts=LATER_TS), cfg())
    assert [(x.action, x.position_id, x.exit_reason, x.qty) for x in d] == [
        (Action.EXIT, "A", ExitReason.PROFIT_TARGET, 2), (Action.EXIT, "C", ExitReason.STOP_LOSS, 1)]
    assert d[0].codes == (ReasonCode.EXIT,) and d[0].structure is Structure.IRON_CONDOR
    assert d[0].reasons == ("mark 0.300 <= target 0.500",)
    assert d[1].reasons == ("loss 2.000 >= 1.5 x credit 1.000",)


def test_expiring_today_rule() -> None:
    today = {"expiry": DAY}
    # dte 0 < dte_exit, not the last bar: held for the settlement
    assert exits_of(book_position(**today)) == []
    # a risk exit still fires before the last bar
    assert exits_of(book_position(mark=3.0, **today)) == [(ExitReason.STOP_LOSS, "P1")]
    assert exits_of(book_position(mark=0.3, **today)) == [(ExitReason.PROFIT_TARGET, "P1")]
    assert exits_of(book_position(**today), regime_code=CRASH) == [(ExitReason.CRASH_MODE, "P1")]
    # the last bar: never traded, whatever fires
    for kw in ({}, {"mark": 3.0}, {"mark": 0.3}):
        assert exits_of(book_position(**kw, **today), last_bar=True) == []
    # one day left on the last bar: the DTE exit trades as usual
    assert exits_of(book_position(expiry=DAY + dt.timedelta(days=1)), last_bar=True) == [(ExitReason.DTE_EXIT, "P1")]


def test_a_position_settling_today_frees_its_slot_on_the_last_bar() -> None:
    bp = book_position(expiry=DAY)
    conf = cfg(strategy__max_positions=1, backtest__entry_every_bar=True)
    ts = dt.datetime(2018, 3, 1, 15, 55)
    d = decide(snapshot(book=make_book((bp,)), ts=ts, last_bar=True), conf)
    assert [x.action for x in d] == [Action.ENTER]
    d = decide(snapshot(book=make_book((bp,)), ts=ts, last_bar=False), conf)
    assert [(x.action, x.codes) for x in d] == [(Action.SKIP, (ReasonCode.MAX_POSITIONS,))]


# --------------------------------------------------------------------------- drawdown

def test_drawdown_halt_on_the_trip_bar() -> None:
    # equity 24,500 vs 25,000 at the open: 2.0% >= 2%
    book = make_book(cash=24_500.0, sod=25_000.0)
    d = decide(snapshot(book=book, ts=LATER_TS), cfg())
    assert [(x.action, x.codes) for x in d] == [(Action.HALT, (ReasonCode.DRAWDOWN_STOP,))]
    assert d[0].reasons == ("daily drawdown 2.00% >= 2.00%: no new entries today",)
    # on the entry bar: HALT then the entry SKIPs with DRAWDOWN_STOP
    d = decide(snapshot(book=book), cfg())
    assert [(x.action, x.codes) for x in d] == [(Action.HALT, (ReasonCode.DRAWDOWN_STOP,)),
                                                (Action.SKIP, (ReasonCode.DRAWDOWN_STOP,))]
    assert d[1].reasons == ("daily drawdown stop (2.00%) active",)
    # 1.9%: nothing
    d = decide(snapshot(book=make_book(cash=24_525.0, sod=25_000.0), ts=LATER_TS), cfg())
    assert d == ()


def test_drawdown_counts_marked_positions() -> None:
    # cash 25,000, one position marked at 3.0 x 2 units: equity 25,000 - 600 = 24,400 -> 2.4%
    bp = book_position(qty=2, mark=3.0, credit=3.5)  # loss -0.5: no stop
    book = make_book((bp,), sod=25_000.0)
    assert book.equity == pytest.approx(24_400.0)
    d = decide(snapshot(book=book, ts=LATER_TS), cfg())
    assert [x.action for x in d] == [Action.HALT] and d[0].reasons[0].startswith("daily drawdown 2.40%")


def test_flatten_on_drawdown_exits_every_position() -> None:
    a = book_position("A", mark=0.3)  # would exit anyway (profit target)
    b = book_position("B")  # would be held
    c = book_position("C", expiry=DAY)  # expires today, not the last bar: a flatten is not a DTE exit
    book = make_book((a, b, c), cash=24_000.0, sod=25_000.0)
    d = decide(snapshot(book=book, ts=LATER_TS), cfg(risk__flatten_on_drawdown=True))
    assert [x.action for x in d] == [Action.HALT, Action.EXIT, Action.EXIT, Action.EXIT]
    assert [(x.position_id, x.exit_reason) for x in d[1:]] == [(p, ExitReason.DRAWDOWN_FLATTEN) for p in "ABC"]
    assert all(x.reasons == ("daily drawdown stop: flatten",) for x in d[1:])
    # without flatten only the position's own exit
    d = decide(snapshot(book=book, ts=LATER_TS), cfg())
    assert [(x.action, x.position_id, x.exit_reason) for x in d] == [
        (Action.HALT, "", None), (Action.EXIT, "A", ExitReason.PROFIT_TARGET)]


def test_flatten_leaves_todays_expiry_to_settlement_on_the_last_bar() -> None:
    book = make_book((book_position("A"), book_position("C", expiry=DAY)), cash=24_000.0, sod=25_000.0)
    d = decide(snapshot(book=book, ts=LATER_TS, last_bar=True), cfg(risk__flatten_on_drawdown=True))
    assert [(x.action, x.position_id) for x in d] == [(Action.HALT, ""), (Action.EXIT, "A")]


def test_halted_book_does_not_halt_again() -> None:
    a = book_position("A")
    book = make_book((a,), cash=24_000.0, sod=25_000.0, halted=True)
    conf = cfg(risk__flatten_on_drawdown=True)
    assert decide(snapshot(book=book, ts=LATER_TS), conf) == ()  # no HALT, no second flatten
    d = decide(snapshot(book=book), conf)
    assert [(x.action, x.codes) for x in d] == [(Action.SKIP, (ReasonCode.DRAWDOWN_STOP,))]
    # halted latches even after equity recovers; exits still run
    book = make_book((book_position("A", mark=0.3),), halted=True)
    d = decide(snapshot(book=book), conf)
    assert [(x.action, x.exit_reason) for x in d] == [(Action.EXIT, ExitReason.PROFIT_TARGET), (Action.SKIP, None)]
    assert d[1].codes == (ReasonCode.DRAWDOWN_STOP,)


# ------------------------------------------------------------------------------ hedge

# per-share leg deltas with w @ delta = -37.4 for 2 units: -200 x -0.2 + 200 x -0.1 - 200 x 0.387 + 200 x 0.1
HEDGE_DELTAS = (-0.2, -0.1, 0.387, 0.1)


def test_hedge_trigger_and_target() -> None:
    conf = cfg(hedge__enable_hedge=True)
    bp = book_position(qty=2, deltas=HEDGE_DELTAS)
    d = decide(snapshot(book=make_book((bp,)), ts=LATER_TS), conf)
    h = only(d, Action.HEDGE)
    # |-37.4 / 200| = 0.187 > 0.10: target -round(-37.4) = 37 shares
    assert (h.qty, h.codes, h.limit) == (37, (ReasonCode.HEDGE,), SPOT)
    assert h.reasons == ("net delta -0.187 per contract beyond ±0.1",)
    # 10 shares already: (-37.4 + 10) / 200 = -0.137 -> trade 37 - 10 = 27
    d = decide(snapshot(book=make_book((bp,), shares=10.0, hedge_shares=10.0), ts=LATER_TS), conf)
    assert only(d, Action.HEDGE).qty == 27
    # 20 shares: -0.087 inside the band -> nothing
    d = decide(snapshot(book=make_book((bp,), shares=20.0, hedge_shares=20.0), ts=LATER_TS), conf)
    assert d == ()
    # hedging off: nothing
    assert decide(snapshot(book=make_book((bp,)), ts=LATER_TS), cfg()) == ()
    # a wider threshold: 0.187 <= 0.2
    assert decide(snapshot(book=make_book((bp,)), ts=LATER_TS), cfg(hedge__enable_hedge=True,
                                                                        hedge__hedge_threshold=0.2)) == ()


def test_hedge_unwinds_without_positions() -> None:
    conf = cfg(hedge__enable_hedge=True)
    d = decide(snapshot(book=make_book(shares=12.0, hedge_shares=12.0), ts=LATER_TS), conf)
    h = only(d, Action.HEDGE)
    assert (h.qty, h.codes, h.reasons) == (-12, (ReasonCode.HEDGE_UNWIND,), ("unwind hedge: no open position",))
    # the last position exits this bar: the hedge is unwound after the exit
    bp = book_position(qty=2, mark=0.3, deltas=HEDGE_DELTAS)
    d = decide(snapshot(book=make_book((bp,), shares=37.0, hedge_shares=37.0), ts=LATER_TS), conf)
    assert [x.action for x in d] == [Action.EXIT, Action.HEDGE]
    assert d[1].qty == -37 and d[1].codes == (ReasonCode.HEDGE_UNWIND,)
    # no hedge and no position: nothing
    assert decide(snapshot(ts=LATER_TS), conf) == ()


def test_hedge_counts_todays_entry() -> None:
    c = expected_condor(make_slice())
    conf = _roomy(hedge__enable_hedge=True, hedge__hedge_threshold=0.001, strategy__quantity=3)
    d = decide(snapshot(), conf)
    e = only(d, Action.ENTER)
    option_delta = c["delta"] * 100 * e.qty
    assert e.qty == 3 and abs(option_delta / (100 * e.qty)) > 0.001
    assert only(d, Action.HEDGE).qty == -round(option_delta)
    assert [x.action for x in d] == [Action.ENTER, Action.HEDGE]


# ----------------------------------------------------------------------- purity, pickling

def _arrays_of(snap: MarketSnapshot) -> list[np.ndarray]:
    out = [a.copy() for a in snap.features.features.columns.values()]
    for e in snap.chain.expiries():
        sl = snap.chain.expiry_slice(e)
        out += [getattr(sl, n).copy() for n in sl.__slots__ if isinstance(getattr(sl, n), np.ndarray)]
    for bp in snap.book.positions:
        out += [getattr(bp.marks, n).copy() for n in bp.marks.__slots__]
    return out


def _summary(d: tuple[TradeDecision, ...]) -> list[tuple[Any, ...]]:
    return [(x.action, x.codes, x.reasons, x.qty, x.exit_reason, x.position_id, x.legs) for x in d]


def test_decide_is_pure() -> None:
    conf = _roomy(hedge__enable_hedge=True, hedge__hedge_threshold=0.05, strategy__quantity=2, mtf__use_mtf=True,
                  fuzzy__use_fuzzy=True)
    bp = book_position("A", qty=2, deltas=HEDGE_DELTAS)
    done = book_position("B", mark=0.3)
    snap = snapshot(book=make_book((bp, done), shares=5.0, hedge_shares=5.0),
                    feats=features(mtf_consensus=0.5, fuzzy_confidence=0.9))
    arrays = _arrays_of(snap)
    book_fields = (snap.book.positions, snap.book.cash, snap.book.reserved, snap.book.shares,
                   snap.book.hedge_shares, snap.book.spot, snap.book.start_of_day_equity, snap.book.halted)
    positions = [copy.deepcopy(b.position) for b in snap.book.positions]
    first = decide(snap, conf)
    second = decide(snap, conf)
    assert first == second
    assert [x.action for x in first] == [Action.EXIT, Action.ENTER, Action.HEDGE]
    after = _arrays_of(snap)
    assert len(after) == len(arrays) and all(np.array_equal(a, b, equal_nan=True) for a, b in zip(
        arrays, after, strict=True))
    assert (snap.book.positions, snap.book.cash, snap.book.reserved, snap.book.shares, snap.book.hedge_shares,
            snap.book.spot, snap.book.start_of_day_equity, snap.book.halted) == book_fields
    assert [b.position for b in snap.book.positions] == positions


def _pickled_cases() -> list[tuple[bytes, bytes]]:
    reasons = ("", "15m bars warming up", "60m bars stale")
    mtf_off = features(mtf_reasons=reasons, mtf_consensus=math.nan, mtf_reason_code=1.0)
    mtf_ok = features(mtf_reasons=reasons, mtf_consensus=0.5, mtf_reason_code=0.0)
    bp = book_position("A", qty=2, mark=0.3, deltas=HEDGE_DELTAS)
    conf = cfg(mtf__use_mtf=True, hedge__enable_hedge=True)
    snaps = [snapshot(feats=mtf_off, book=make_book((bp,), shares=7.0, hedge_shares=7.0)),
             snapshot(feats=mtf_ok, book=make_book((book_position("B", qty=2, deltas=HEDGE_DELTAS),)))]
    return [(pickle.dumps(s), pickle.dumps(conf)) for s in snaps]


def decide_pickled(payload: tuple[bytes, bytes]) -> bytes:
    """Run in a spawned process: unpickle a snapshot and a config, decide, pickle the summary."""
    snap, conf = pickle.loads(payload[0]), pickle.loads(payload[1])
    return pickle.dumps(_summary(decide(snap, conf)))


def test_pickled_snapshot_decides_the_same_in_a_spawned_process() -> None:
    cases = _pickled_cases()
    local = [_summary(decide(pickle.loads(s), pickle.loads(c))) for s, c in cases]
    # case 1: the profit-target exit, the MTF skip decoded from the table after the round trip, the unwind
    assert [(x[0], x[4]) for x in local[0]] == [(Action.EXIT, ExitReason.PROFIT_TARGET), (Action.SKIP, None),
                                                (Action.HEDGE, None)]
    assert local[0][1][1:3] == ((ReasonCode.MTF_UNAVAILABLE,), ("MTF consensus unavailable: 15m bars warming up",))
    assert local[0][2][1:4] == ((ReasonCode.HEDGE_UNWIND,), ("unwind hedge: no open position",), -7)
    # case 2: an entry beside a held position: (-37.4 + 0.64) / 300 contracts beyond 0.1 -> +37 shares
    assert [(x[0], x[3]) for x in local[1]] == [(Action.ENTER, 1), (Action.HEDGE, 37)]
    with get_context("spawn").Pool(1) as pool:
        remote = [pickle.loads(b) for b in pool.map(decide_pickled, cases)]
    assert remote == local


# ------------------------------------------------- issue 15: selector, rolls, events, new exits

REGIME_CODE = {r: float(list(Regime).index(r)) for r in Regime}
BACK = EXPIRY + dt.timedelta(days=28)  # 2018-05-06: a back month 28 days after the front


def _selector_cfg(**extra: Any) -> AppConfig:
    return _roomy(strategy__use_selector=True, filters__vix_max=50.0, **extra)


def _selected(regime: Regime, conf: AppConfig, **feats: float) -> TradeDecision:
    snap = snapshot(feats=features(regime_code=REGIME_CODE[regime], **feats),
                    slices=(make_slice(), make_slice(BACK)))
    return entry_of(decide(snap, conf))


def test_selector_off_opens_the_configured_structure_whatever_the_regime() -> None:
    d = _selected(Regime.HIGH_VOL_RANGE, _roomy())
    assert d.action is Action.ENTER and d.structure is Structure.IRON_CONDOR
    assert "regime" not in d.scores  # default decisions are unchanged


def test_selector_low_vol_opens_a_calendar_on_front_and_back_month() -> None:
    d = _selected(Regime.LOW_VOL_RANGE, _selector_cfg(), vix=11.0, iv_rank=10.0)
    assert d.action is Action.ENTER and d.structure is Structure.CALL_CALENDAR, d.reasons
    assert (d.scores["regime"], d.scores["structure"]) == ("LOW_VOL_RANGE", "call_calendar")
    sl = make_slice()
    atm = float(sl.strikes[int(np.argmin(np.abs(sl.call_delta - 0.5)))])
    short, long_ = d.legs
    assert (short.side, long_.side) == (Side.SHORT, Side.LONG)
    assert short.contract.strike == long_.contract.strike == atm
    assert (short.contract.expiry, long_.contract.expiry) == (EXPIRY, BACK)
    # size: the debit is the max loss per contract
    debit = long_.entry_price - short.entry_price
    assert d.scores["max_loss_per_contract"] == pytest.approx(debit * 100)


@pytest.mark.parametrize(("feats", "why"), [
    ({"vix": 11.0, "iv_rank": 50.0}, "call_calendar needs IV rank < 20, have 50.0"),
    ({"vix": 15.0, "iv_rank": 10.0}, "call_calendar needs VIX < 12, have 15.00"),
])
def test_selector_calendar_conditions(feats: dict[str, float], why: str) -> None:
    d = _selected(Regime.LOW_VOL_RANGE, _selector_cfg(), **feats)
    assert d.action is Action.SKIP and d.codes == (ReasonCode.SELECTOR_CONDITIONS,)
    assert d.reasons == (f"selector: LOW_VOL_RANGE -> call_calendar: {why}",)
    assert d.scores["regime"] == "LOW_VOL_RANGE"


def test_selector_high_vol_opens_a_wide_condor() -> None:
    d = _selected(Regime.HIGH_VOL_RANGE, _selector_cfg())
    assert d.action is Action.ENTER and d.structure is Structure.WIDE_IRON_CONDOR
    k = {leg.role: leg.contract.strike for leg in d.legs}
    assert k[LegRole.SHORT_PUT] - k[LegRole.LONG_PUT] == 10.0 == k[LegRole.LONG_CALL] - k[LegRole.SHORT_CALL]
    narrow = expected_condor(make_slice())
    assert (k[LegRole.SHORT_PUT], k[LegRole.SHORT_CALL]) == (narrow["strikes"][0], narrow["strikes"][2])


def test_selector_trends_pick_broken_wing_butterflies() -> None:
    bear = _selected(Regime.BEAR_TREND, _selector_cfg())
    assert bear.action is Action.ENTER and bear.structure is Structure.CALL_BROKEN_WING_BUTTERFLY
    k = {leg.role: (leg.contract.strike, leg.qty) for leg in bear.legs}
    body = k[LegRole.SHORT_CALL][0]
    assert k[LegRole.LONG_CALL] == (body - 5.0, 1) and k[LegRole.LONG_CALL_FAR] == (body + 10.0, 1)
    assert k[LegRole.SHORT_CALL][1] == 2
    # the flat-volatility slice prices the bullish put butterfly at a debit: chosen, then skipped for it
    bull = _selected(Regime.BULL_TREND, _selector_cfg())
    assert bull.action is Action.SKIP and bull.structure is Structure.PUT_BROKEN_WING_BUTTERFLY
    assert bull.codes == (ReasonCode.NO_CANDIDATE,) and "put BWB credit -" in bull.reasons[0]
    assert bull.scores["regime"] == "BULL_TREND"


def test_selector_crash_stands_aside_or_buys_the_put_hedge() -> None:
    aside = _selected(Regime.CRASH_MODE, _selector_cfg(), vix=40.0, regime_crash=1.0)
    assert aside.action is Action.SKIP and aside.codes == (ReasonCode.SELECTOR_STAND_ASIDE,)
    assert aside.reasons == ("selector: CRASH_MODE -> stand aside",)
    hedge = _selected(Regime.CRASH_MODE, _selector_cfg(strategy__crash_mode="long_put"), vix=40.0,
                      regime_crash=1.0)
    assert hedge.action is Action.ENTER and hedge.structure is Structure.LONG_PUT, hedge.reasons
    (leg,) = hedge.legs
    assert leg.side is Side.LONG and leg.contract.right is OptionRight.PUT
    sl = make_slice()
    assert abs(abs(sl.put_delta[sl.index_of(leg.contract.strike)]) - 0.25) < 0.03


def test_selector_trend_needs_the_forecast_to_agree_when_asked() -> None:
    on = _selector_cfg(strategy__selector_forecast=True)
    against = _selected(Regime.BEAR_TREND, on, neural_direction=0.3)
    assert against.action is Action.SKIP and against.codes == (ReasonCode.SELECTOR_STAND_ASIDE,)
    assert against.reasons == ("selector: BEAR_TREND but the forecast leans +0.30: stand aside",)
    assert _selected(Regime.BEAR_TREND, on, neural_direction=-0.3).action is Action.ENTER
    assert _selected(Regime.BEAR_TREND, on).action is Action.ENTER  # no forecast: no veto
    assert _selected(Regime.BEAR_TREND, _selector_cfg(), neural_direction=0.3).action is Action.ENTER  # off


def test_selector_table_is_configuration() -> None:
    d = _selected(Regime.HIGH_VOL_RANGE, _selector_cfg(strategy__selector={"HIGH_VOL_RANGE": "none"}))
    assert d.action is Action.SKIP and d.reasons == ("selector: HIGH_VOL_RANGE -> stand aside",)
    d = _selected(Regime.HIGH_VOL_RANGE, _selector_cfg(strategy__selector={"HIGH_VOL_RANGE": "iron_condor"}))
    assert d.action is Action.ENTER and d.structure is Structure.IRON_CONDOR


def test_dte_roll_closes_and_reopens_in_the_next_expiry_as_one_decision() -> None:
    near = DAY + dt.timedelta(days=6)
    bp = book_position("P7", qty=3, expiry=near)
    snap = snapshot(book=make_book((bp,)), ts=LATER_TS, slices=(make_slice(near), make_slice()))
    assert only(decide(snap, cfg()), Action.EXIT).exit_reason is ExitReason.DTE_EXIT  # default: close
    d = only(decide(snap, cfg(exits__on_dte="roll")), Action.ROLL)
    assert (d.position_id, d.exit_reason, d.codes, d.qty) == ("P7", ExitReason.DTE_EXIT, (ReasonCode.ROLL,), 3)
    assert d.scores["rolled_from"] == "P7"
    c = expected_condor(make_slice())
    assert tuple(leg.contract.strike for leg in d.legs) == c["strikes"]
    assert {leg.contract.expiry for leg in d.legs} == {EXPIRY}
    # nothing later than the expiry being left: a plain close, saying why
    lone = snapshot(book=make_book((bp,)), ts=LATER_TS, slices=(make_slice(near),))
    x = only(decide(lone, cfg(exits__on_dte="roll")), Action.EXIT)
    assert x.exit_reason is ExitReason.DTE_EXIT and "no roll: no listed expiry" in x.reasons[0]


def test_breakout_adjust_rolls_the_tested_side_away_and_keeps_the_other() -> None:
    spot = 270.0
    bp = book_position("P3", strikes=(245.0, 240.0, 265.0, 270.0))
    snap = snapshot(feats=features(bb_upper=268.0), book=make_book((bp,), spot=spot), ts=LATER_TS, spot=spot,
                    slices=(make_slice(spot=spot),))
    assert only(decide(snap, cfg()), Action.EXIT).exit_reason is ExitReason.BREAKOUT
    d = only(decide(snap, cfg(exits__on_breakout="adjust")), Action.ROLL)
    assert (d.codes, d.exit_reason, d.scores["rolled_from"]) == ((ReasonCode.ADJUST,), ExitReason.BREAKOUT, "P3")
    k = {leg.role: leg.contract.strike for leg in d.legs}
    assert (k[LegRole.SHORT_PUT], k[LegRole.LONG_PUT]) == (245.0, 240.0)  # untested side kept
    c = expected_condor(make_slice(spot=spot))
    assert (k[LegRole.SHORT_CALL], k[LegRole.LONG_CALL]) == (c["strikes"][2], c["strikes"][3])
    assert k[LegRole.SHORT_CALL] > 265.0  # away from the tested strike
    assert "adjust call side" in d.reasons[0]
    # at most one adjustment a session: a position opened (or adjusted) today is held
    fresh = book_position("P4", strikes=(245.0, 240.0, 265.0, 270.0), opened=DAY)
    today = snapshot(feats=features(bb_upper=268.0), book=make_book((fresh,), spot=spot), ts=LATER_TS, spot=spot,
                     slices=(make_slice(spot=spot),))
    assert not [x for x in decide(today, cfg(exits__on_breakout="adjust")) if x.action in (Action.ROLL, Action.EXIT)]
    assert only(decide(today, cfg()), Action.EXIT).exit_reason is ExitReason.BREAKOUT  # close mode unchanged


def _two_expiry_position(pid: str = "C1", front: dt.date = DAY) -> BookPosition:
    legs = (Leg(LegRole.SHORT_CALL, OptionContract("SPY", front, 260.0, OptionRight.CALL), Side.SHORT, 1, 3.0),
            Leg(LegRole.LONG_CALL, OptionContract("SPY", front + dt.timedelta(days=28), 260.0, OptionRight.CALL),
                Side.LONG, 1, 4.5))
    pos = Position(pid, Structure.CALL_CALENDAR, legs, 1, dt.datetime(2018, 2, 1, 10, 0), -1.5, 1.5)
    mid = np.array([0.5, 3.2])
    return BookPosition(pos, LegMarks(mid - 0.01, mid + 0.01, mid, np.zeros(2), np.zeros(2), np.zeros(2),
                                      np.zeros(2)), 150.0)


def test_a_calendar_is_closed_on_its_front_expiry_even_on_the_last_bar() -> None:
    bp = _two_expiry_position()
    conf = cfg(exits__dte_exit=0, exits__max_hold_days=365, exits__profit_target=False)
    for last in (False, True):
        d = only(decide(snapshot(book=make_book((bp,)), ts=LATER_TS, last_bar=last), conf), Action.EXIT)
        assert d.exit_reason is ExitReason.FRONT_EXPIRY
    later = _two_expiry_position(front=DAY + dt.timedelta(days=1))
    assert not [d for d in decide(snapshot(book=make_book((later,)), ts=LATER_TS), conf) if d.action is Action.EXIT]


def test_the_crash_exit_spares_a_long_put_hedge() -> None:
    leg = Leg(LegRole.LONG_PUT, OptionContract("SPY", EXPIRY, 250.0, OptionRight.PUT), Side.LONG, 1, 2.0)
    pos = Position("H1", Structure.LONG_PUT, (leg,), 1, dt.datetime(2018, 2, 28, 10, 0), -2.0, 2.0)
    mid = np.array([2.5])
    bp = BookPosition(pos, LegMarks(mid, mid, mid, np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1)), 200.0)
    crash = features(regime_code=REGIME_CODE[Regime.CRASH_MODE], regime_crash=1.0)
    assert not [d for d in decide(snapshot(feats=crash, book=make_book((bp,)), ts=LATER_TS), cfg())
                if d.action is Action.EXIT]
    condor = book_position("P1")
    d = only(decide(snapshot(feats=crash, book=make_book((condor,)), ts=LATER_TS), cfg()), Action.EXIT)
    assert d.exit_reason is ExitReason.CRASH_MODE


def _put_bwb_position(mark: float) -> BookPosition:
    spec = ((LegRole.LONG_PUT, 255.0, Side.LONG, 1), (LegRole.SHORT_PUT, 250.0, Side.SHORT, 2),
            (LegRole.LONG_PUT_FAR, 240.0, Side.LONG, 1))
    legs = tuple(Leg(role, OptionContract("SPY", EXPIRY, k, OptionRight.PUT), side, q, 1.0)
                 for role, k, side, q in spec)
    pos = Position("B1", Structure.PUT_BROKEN_WING_BUTTERFLY, legs, 1, dt.datetime(2018, 2, 28, 10, 0), 0.40, 4.60)
    mid = np.array([-mark, 0.0, 0.0])  # mark_debit = -(+1 x -mark) = mark
    return BookPosition(pos, LegMarks(mid, mid, mid, np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3)), 460.0)


def test_broken_wing_profit_target_reads_the_max_profit() -> None:
    # max profit 5 + 0.40 = 5.40; 50% of it is a P&L of 2.70: mark debit 0.40 - 2.70 = -2.30
    exits = [d for d in decide(snapshot(book=make_book((_put_bwb_position(-2.31),)), ts=LATER_TS), cfg())
             if d.action is Action.EXIT]
    assert exits and exits[0].exit_reason is ExitReason.PROFIT_TARGET
    assert exits[0].reasons == ("P&L 2.710 >= 0.5 x max profit 5.400",)
    assert not [d for d in decide(snapshot(book=make_book((_put_bwb_position(-2.0),)), ts=LATER_TS), cfg())
                if d.action is Action.EXIT]


def test_same_day_expiry_closes_at_the_intraday_exit_time() -> None:
    bp = book_position("Z1", expiry=DAY)
    conf = cfg(exits__intraday_exit_time="15:30")
    early = decide(snapshot(book=make_book((bp,)), ts=dt.datetime(2018, 3, 1, 15, 25)), conf)
    assert not [d for d in early if d.action is Action.EXIT]  # DTE 0 < 7 is held for settlement
    d = only(decide(snapshot(book=make_book((bp,)), ts=dt.datetime(2018, 3, 1, 15, 30)), conf), Action.EXIT)
    assert (d.exit_reason, d.reasons) == (ExitReason.TIME_EXIT, ("expires today: intraday exit at 15:30",))
    assert not [d for d in decide(snapshot(book=make_book((bp,)), ts=dt.datetime(2018, 3, 1, 15, 30)), cfg())
                if d.action is Action.EXIT]  # off by default


@dataclass(frozen=True)
class _EventSession:
    """SessionFacts plus the event count the driver supplies (``data_factory.events``)."""

    session_date: dt.date
    minutes_to_close: float
    last_bar: bool
    first_bar: bool
    next_ex_dividend: float | None
    sessions_to_event: int | None
    next_event: str = "cpi 2018-03-13"


def _event_snapshot(n: int | None, book: Book | None = None, ts: dt.datetime = ENTRY_TS) -> MarketSnapshot:
    snap = snapshot(book=book, ts=ts)
    return dataclasses.replace(snap, session=_EventSession(ts.date(), 60.0, False, False, None, n))


def test_event_blackout_gate_and_flat_before_event() -> None:
    conf = cfg(gates__event_blackout_sessions=1)
    for n, blocked in ((0, True), (1, True), (2, False), (-1, False), (None, False)):
        d = entry_of(decide(_event_snapshot(n), conf))
        assert (d.action is Action.SKIP and d.codes == (ReasonCode.EVENT_BLACKOUT,)) is blocked, (n, d)
    d = entry_of(decide(_event_snapshot(1), conf))
    assert d.reasons == ("cpi 2018-03-13 in 1 session(s): no new entries within 1 session(s) before an event",)
    assert entry_of(decide(_event_snapshot(0), cfg())).action is Action.ENTER  # off by default
    book = make_book((book_position("E1"),))
    close = cfg(gates__event_close_sessions=1)
    d = only(decide(_event_snapshot(1, book, LATER_TS), close), Action.EXIT)
    assert d.exit_reason is ExitReason.EVENT and d.codes == (ReasonCode.EVENT_CLOSE,) and d.reasons == (
        "cpi 2018-03-13 in 1 session(s): flat within 1 session(s) before an event",)
    assert not [d for d in decide(_event_snapshot(2, book, LATER_TS), close) if d.action is Action.EXIT]


def test_event_calendar_data() -> None:
    from data_factory import events

    per_year = {y: sum(d.year == y for d in events.FOMC_DAYS) for y in range(1999, 2027)}
    assert per_year == {y: 7 if y == 2020 else 8 for y in range(1999, 2027)}
    assert all(d.weekday() < 5 for d in events.FOMC_DAYS + events.CPI_DAYS)
    assert all(sum(d.year == y for d in events.CPI_DAYS) == 12 for y in range(1999, 2025))
    assert sum(d.year == 2025 for d in events.CPI_DAYS) == 11  # no October 2025 release (shutdown)
    # release days read off BLS archive file names and confirmed by dated reports (events.py doc)
    for day in ("1999-01-14", "1999-05-14", "2000-06-14", "2001-10-19", "2003-03-21", "2006-03-16",
                "2007-08-15", "2025-10-24", "2026-02-13"):
        assert dt.date.fromisoformat(day) in events.CPI_DAYS
    assert dt.date(2006, 3, 15) not in events.CPI_DAYS and dt.date(2026, 2, 11) not in events.CPI_DAYS
    assert dt.date(2008, 10, 8) not in events.FOMC_DAYS  # unscheduled cut: not knowable in advance
    # Fri 2018-03-09 -> CPI Tue 03-13 is 2 sessions away; the Monday 1; the day 0
    days = [dt.date(2018, 3, 9), dt.date(2018, 3, 12), dt.date(2018, 3, 13), dt.date(2018, 3, 20)]
    assert events.sessions_to_event(days).tolist() == [2, 1, 0, 1]
    assert events.sessions_to_event(days, ["fomc"]).tolist() == [8, 7, 6, 1]
    assert events.next_event(dt.date(2018, 3, 14)) == (dt.date(2018, 3, 21), "fomc")


def test_event_gate_acts_exactly_on_the_listed_days_of_2018() -> None:
    from data_factory import events
    from data_factory.calendar import previous_session, sessions

    days = [d.date() for d in sessions(dt.date(2018, 1, 2), dt.date(2018, 12, 31))]
    counts = events.sessions_to_event(days)
    conf = cfg(gates__event_blackout_sessions=1)
    base = snapshot()
    blocked = set()
    for day, n in zip(days, counts.tolist(), strict=True):
        ts = dt.datetime.combine(day, dt.time(10, 0))
        snap = dataclasses.replace(base, ts=ts, session=_EventSession(day, 60.0, False, False, None, n))
        if entry_of(decide(snap, conf)).codes == (ReasonCode.EVENT_BLACKOUT,):
            blocked.add(day)
    listed = [d for d in events.event_days() if d.year == 2018]
    assert len(listed) == 8 + 12
    assert blocked == set(listed) | {previous_session(d) for d in listed}
    assert {dt.date(2018, 3, 12), dt.date(2018, 3, 13), dt.date(2018, 3, 20), dt.date(2018, 3, 21)} <= blocked
    assert dt.date(2018, 3, 9) not in blocked and dt.date(2018, 3, 14) not in blocked


def test_broken_wing_entry_must_fill_for_a_credit() -> None:
    bear = _selected(Regime.BEAR_TREND, _selector_cfg())
    assert bear.action is Action.ENTER and bear.limit == 0.0
    assert entry_of(decide(snapshot(), _roomy())).limit is None  # the condor's order is unchanged
