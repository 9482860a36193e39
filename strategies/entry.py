"""Entry decision for the configured structure — a pure function of the snapshot, the book
as it stands after this bar's exits, and the config.

Order (the first failure is the decision's reason): drawdown stop, max positions, the event
blackout (``gates.event_blackout_sessions``, off by default), the structure — the configured
one, or with ``strategy.use_selector`` the regime's (``strategies.selector``: stand aside, or
its entry conditions) — market gates (``strategies.gates``; a hedge skips them), candidate
selection on the expiries inside the structure's DTE window (nearest the window's middle
first: strike rules, back month for a calendar, credit/width or the sign of the price,
liquidity, breach probability), entry score (with ``--use-fuzzy``), sizing
(``strategies.sizing``), risk caps (``risk.manager``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass

from analytics.market_structure import put_wing_extra, slice_skew
from core.config import AppConfig
from core.dto import (
    CONTRACT_MULTIPLIER,
    Action,
    ChainView,
    ExpirySlice,
    FeatureRow,
    LegRole,
    MarketSnapshot,
    OptionRight,
    ReasonCode,
    Side,
    TradeDecision,
)
from intelligence.pipeline import factor_log
from risk.greeks import BookGreeks
from risk.manager import RiskLimits, RiskManager
from strategies.gates import event_gate, market_gate
from strategies.scoring import entry_score
from strategies.selector import Plan, SelectorSettings, choose, conditions_problem
from strategies.sizing import size_contracts
from strategies.structures.catalog import spec_of
from strategies.structures.spec import Candidate, SelectionParams, StructureSpec, back_month, select


@dataclass(frozen=True, slots=True)
class EntryBook:
    """The book an entry would join: positions left after this bar's exits and settlements."""

    open_positions: int
    equity: float
    reserved: float  # buying power already held, dollars
    greeks: BookGreeks
    short_dte_gamma: float
    halted: str = ""  # non-empty: why the risk layer blocks new entries today


def _skip(code: ReasonCode, reason: str, structure: StructureSpec, scores: dict[str, object] | None = None
          ) -> TradeDecision:
    return TradeDecision(Action.SKIP, structure.kind, reasons=(reason,), codes=(code,), scores=scores or {})


def liquidity_problem(c: Candidate, max_rel_spread: float, min_volume: float, min_oi: float) -> str | None:
    """The first liquidity failure of a candidate, or None: every leg has an offer; short legs
    pass the spread, volume and open-interest floors."""
    for leg, q in zip(c.spec.legs, c.quotes, strict=True):
        if q.ask <= 0:
            return f"{leg.role.value} {q.strike:g} has no offer"
    for leg, q in zip(c.spec.legs, c.quotes, strict=True):
        if leg.side is not Side.SHORT:
            continue
        if q.rel_spread > max_rel_spread:
            return f"{leg.role.value} spread {q.rel_spread:.2f} of mid > {max_rel_spread:.2f}"
        if q.volume < min_volume:
            return f"{leg.role.value} volume {q.volume:.0f} < {min_volume:.0f}"
        if q.open_interest < min_oi:
            return f"{leg.role.value} open interest {q.open_interest:.0f} < {min_oi:.0f}"
    return None


def window_slices(snap: MarketSnapshot, cfg: AppConfig, plan: Plan | None = None) -> list[ExpirySlice]:
    lo, hi = (plan.dte_min, plan.dte_max) if plan is not None else (cfg.strategy.dte_min, cfg.strategy.dte_max)
    day = snap.session.session_date
    return [snap.chain.expiry_slice(e) for e in snap.chain.expiries() if lo <= (e - day).days <= hi]


def _candidate_problem(cand: Candidate, cfg: AppConfig, min_credit_ratio: float | None = None) -> str:
    s, f = cfg.strategy, cfg.filters
    ratio_min = s.min_credit_ratio if min_credit_ratio is None else min_credit_ratio
    if cand.spec.debit:
        if not cand.credit_mid < 0:
            return f"{cand.expiry}: {cand.spec.label} would be opened for a credit {cand.credit_mid:.2f}, not a debit"
    elif not cand.spec.wing_defined and not cand.credit_mid > 0:
        return f"{cand.expiry}: {cand.spec.label} credit {cand.credit_mid:.2f} <= 0"
    elif cand.credit_ratio < ratio_min:
        return f"{cand.expiry}: credit/width {cand.credit_ratio:.2f} < {ratio_min:.2f}"
    if f.liquidity_gate:
        problem = liquidity_problem(cand, f.max_rel_spread, f.min_volume, f.min_open_interest)
        if problem:
            return f"{cand.expiry}: liquidity: {problem}"
    if cand.breach_probability > s.max_breach_prob:
        return f"{cand.expiry}: breach probability {cand.breach_probability:.2f} > {s.max_breach_prob:.2f}"
    return ""


def choose_candidate(spec: StructureSpec, slices: list[ExpirySlice], spot: float, ts: dt.datetime,
                     cfg: AppConfig, plan: Plan | None = None, chain: ChainView | None = None,
                     fixed: Mapping[LegRole, float] | None = None) -> tuple[Candidate | None, list[str]]:
    """Candidate on the expiry nearest the window's middle that passes every structure check.

    ``plan`` carries a structure's own DTE window, delta band and minimum credit/width (the
    configured strategy when None); ``chain`` lists the back months of a two-expiry spec;
    ``fixed`` pins leg strikes (a breakout adjust keeps its untested side)."""
    s = cfg.strategy
    lo, hi = (plan.dte_min, plan.dte_max) if plan is not None else (s.dte_min, s.dte_max)
    if not slices:
        return None, [f"no listed expiry with {lo}-{hi} DTE"]
    middle = 0.5 * (lo + hi)
    reasons: list[str] = []
    expiries = chain.expiries() if chain is not None and spec.slots > 1 else []
    for sl in sorted(slices, key=lambda x: (abs(x.dte - middle), x.dte)):
        extra = 0.0
        if s.use_skew_penalty:
            skew = slice_skew(sl, spot)
            extra = float(put_wing_extra(skew.skew))
            if extra:
                reasons.append(f"{sl.expiry}: skew {skew.skew:.3f} steep, put wing +${extra:g}")
        if plan is None:
            params = SelectionParams(s.effective_target_delta, s.delta_low, s.delta_high, s.wing_min, s.wing_max,
                                     {OptionRight.PUT: extra})
        else:
            params = SelectionParams(plan.target_delta, plan.delta_low, plan.delta_high, s.wing_min, s.wing_max,
                                     {OptionRight.PUT: extra})
        back = None
        if spec.slots > 1 and chain is not None:
            b = back_month(spec, sl, expiries)
            back = chain.expiry_slice(b) if b is not None else None
        cand, why = select(spec, sl, params, s.underlying, ts, back=back, fixed=fixed)
        problem = why if cand is None else _candidate_problem(cand, cfg, plan.min_credit_ratio if plan else None)
        if cand is None or problem:
            reasons.append(problem)
            continue
        return cand, reasons
    return None, reasons


def rule_signal(f: FeatureRow, cfg: AppConfig) -> float:
    """Mean of the range rules in [-1, 1]: +1 each for RSI and %K inside their neutral bands,
    ADX below its low threshold and the Bollinger position inside [0.2, 0.8]; -1 otherwise."""
    ind = cfg.indicators
    checks = (
        ind.rsi_neutral_min <= f.rsi <= ind.rsi_neutral_max,
        ind.stoch_neutral_min <= f.stoch_k <= ind.stoch_neutral_max,
        f.adx <= ind.adx_threshold_low,
        0.2 <= f.bb_position <= 0.8,
    )
    return sum(1.0 if ok else -1.0 for ok in checks) / len(checks)


def score_candidate(cand: Candidate, f: FeatureRow, cfg: AppConfig) -> tuple[float, dict[str, float]]:
    """Entry score S = S_conf + S_prob + S_rules + S_dir of a candidate (SPEC §4).

    confidence = F_t (blended with the forecaster when on); POP = 1 - Σ|Δ_short|;
    direction = prob_bull - prob_bear of the forecaster, else the MTF lean 2C - 1, else 0."""
    conf = f.fuzzy_confidence
    pop = max(1.0 - cand.breach_probability, 0.0)
    direction = f.neural_direction
    if not math.isfinite(direction):
        c = f.mtf_consensus
        direction = 2.0 * c - 1.0 if math.isfinite(c) else 0.0
    s = entry_score(conf if math.isfinite(conf) else 0.0, pop, rule_signal(f, cfg), direction)
    parts = {"s_conf": float(s.s_conf), "s_prob": float(s.s_prob), "s_rules": float(s.s_rules),
             "s_dir": float(s.s_dir), "pop": pop}
    return float(s.total), parts


def risk_size(cand: Candidate, qty: int, book: EntryBook, cfg: AppConfig) -> tuple[int, tuple[str, ...]]:
    unit = BookGreeks(cand.net_greek("delta") * 100, cand.net_greek("gamma") * 100,
                      cand.net_greek("vega") * 100, cand.net_greek("theta") * 100)
    verdict = RiskManager(RiskLimits.from_config(cfg.risk)).check_entry(
        unit, book.greeks, qty, cand.max_loss * CONTRACT_MULTIPLIER, book.equity, dte=cand.dte,
        short_dte_book_gamma=book.short_dte_gamma)
    return verdict.qty, verdict.reasons


def entry_plan(f: FeatureRow, cfg: AppConfig) -> tuple[Plan | None, TradeDecision | None]:
    """The structure this bar would open: ``strategy.structure``, or with the selector on the
    regime's structure (SKIP with the reason when it stands aside or its conditions fail)."""
    settings = _selector_settings(cfg)
    if not settings.use_selector:
        plan = Plan.of(cfg.strategy.structure, cfg)
        problem = conditions_problem(plan.spec.kind, f)
        if problem:
            return None, _skip(ReasonCode.SELECTOR_CONDITIONS, problem, plan.spec)
        return plan, None
    regime = f.regime
    kind, why = choose(regime, settings, f.neural_direction)
    record: dict[str, object] = {"regime": regime.value if regime is not None else "",
                                 "structure": kind.value if kind else "none"}
    if kind is None:
        return None, TradeDecision(Action.SKIP, None, reasons=(why,), codes=(ReasonCode.SELECTOR_STAND_ASIDE,),
                                   scores=record)
    plan = Plan.of(kind, cfg, regime)
    problem = conditions_problem(kind, f)
    if problem:
        return None, _skip(ReasonCode.SELECTOR_CONDITIONS, f"{why}: {problem}", plan.spec, record)
    return plan, None


_settings_cache: tuple[AppConfig, SelectorSettings] | None = None


def _selector_settings(cfg: AppConfig) -> SelectorSettings:
    global _settings_cache
    if _settings_cache is None or _settings_cache[0] is not cfg:
        _settings_cache = (cfg, SelectorSettings.from_config(cfg))
    return _settings_cache[1]


def session_event(snap: MarketSnapshot) -> tuple[int | None, str]:
    """Sessions until the next scheduled event and its label, when the driver supplies them
    (``SessionFacts.sessions_to_event`` / ``next_event``, from ``data_factory.events``)."""
    n = getattr(snap.session, "sessions_to_event", None)
    return (int(n) if n is not None else None), str(getattr(snap.session, "next_event", "") or "")


def _event_settings(cfg: AppConfig) -> tuple[int | None, int | None]:
    """(entry blackout sessions, close-before sessions) from ``cfg.gates``; None = off."""
    g = cfg.gates
    return g.event_blackout_sessions, g.event_close_sessions


def decide_entry(snap: MarketSnapshot, book: EntryBook, cfg: AppConfig) -> TradeDecision:
    """ENTER with legs and size, or SKIP with the reason — never raises for market conditions."""
    base = spec_of(cfg.strategy.structure)
    if book.halted:
        return _skip(ReasonCode.DRAWDOWN_STOP, book.halted, base)
    if book.open_positions >= cfg.strategy.max_positions:
        return _skip(ReasonCode.MAX_POSITIONS, f"max positions {cfg.strategy.max_positions} open", base)
    blackout = _event_settings(cfg)[0]
    if blackout is not None:
        n, label = session_event(snap)
        event = event_gate(n, blackout, label)
        if event:
            return _skip(event[0], event[1], base)
    f = snap.features
    plan, skipped = entry_plan(f, cfg)
    if plan is None:
        assert skipped is not None
        return skipped
    spec = plan.spec
    record: dict[str, object] = {}
    if plan.regime is not None:
        record = {"regime": plan.regime.value, "structure": spec.kind.value}
    if cfg.fuzzy.use_fuzzy or cfg.mtf.use_mtf:
        record["_factors"] = factor_log(f, cfg.fuzzy.weights)
    factors = record
    gate = market_gate(f, cfg) if plan.market_gates else None
    if gate:
        return _skip(gate[0], gate[1], spec, dict(factors))
    cand, reasons = choose_candidate(spec, window_slices(snap, cfg, plan), snap.spot, snap.ts, cfg, plan, snap.chain)
    if cand is None:
        code = ReasonCode.NO_EXPIRY if not reasons or "no listed expiry" in reasons[0] else ReasonCode.NO_CANDIDATE
        return _skip(code, "; ".join(reasons) or "no candidate", spec, dict(factors))
    scores: dict[str, object] = {"credit_ratio": cand.credit_ratio, "breach_prob": cand.breach_probability}
    if cfg.fuzzy.use_fuzzy:
        score, parts = score_candidate(cand, f, cfg)
        scores.update(parts, entry_score=score)
        if score < cfg.fuzzy.score_threshold:
            return _skip(ReasonCode.SCORE_LOW, f"entry score {score:.0f} < {cfg.fuzzy.score_threshold:g}", spec,
                         {**scores, **factors})
    qty, sizes, why = size_contracts(cand.max_loss * CONTRACT_MULTIPLIER, book.equity, book.reserved,
                                     f.fuzzy_confidence, f.sigma_star, cfg)
    scores.update(sizes)
    if qty < 1:
        return _skip(ReasonCode.SIZE_ZERO, why, spec, {**scores, **factors})
    wanted = qty
    qty, risk_reasons = risk_size(cand, qty, book, cfg)
    if qty < 1:
        return _skip(ReasonCode.RISK_BLOCK, "risk: " + "; ".join(risk_reasons), spec, {**scores, **factors})
    scores["q_final"] = qty
    scores["unit_delta"] = cand.net_greek("delta")
    if qty < wanted:
        scores["risk_cut_from"] = wanted
    price = (f"debit {-cand.credit_mid:.2f}" if spec.debit
             else f"credit {cand.credit_mid:.2f} ratio {cand.credit_ratio:.2f}")
    reason = f"{cand.describe()} {price} x{qty}" + "".join(f"; {r}" for r in reasons if "skew" in r)
    # a structure sold for a credit whose risk is not its wing (a broken-wing butterfly) must fill
    # for a credit: the venue rejects a fill that turns it into a debit
    limit = 0.0 if not spec.debit and not spec.wing_defined else None
    return TradeDecision(Action.ENTER, spec.kind, cand.order_legs(cfg.strategy.underlying), qty, (reason,),
                         (ReasonCode.ENTRY,), {**scores, **factors}, limit=limit)
