"""Entry decision for the iron condor — a pure function of the market, the book and the config.

Gates run in a fixed order and the first failure is the decision's reason, so a decisions
log says why nothing was done on every evaluated bar.  Sizing:

    Q_static = quantity                                  (sizing off)
    Q_fuzzy  = floor(Q0 x F_t)        with --use-fuzzy
    Q_fuzzy  = floor(Q0 x F_t x (1 - sigma*))  with --dynamic-sizing
    Q0       = min(fuzzy.max_contracts, floor(equity x position_size_pct / (max_loss x 100)))
    Q_alloc  = floor((equity x max_alloc - held) / (max_loss x 100))
    Q        = min(Q_static|Q_fuzzy, Q_alloc), then the risk check (risk.manager.RiskManager)
               applies Q_risk = floor(equity x max_account_risk_per_trade / (max_loss x 100)) and
               the Greek caps.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from analytics.market_structure import put_wing_extra, slice_skew
from core.config import AppConfig
from core.dto import CONTRACT_MULTIPLIER, Action, ExpirySlice, Leg, LegName, OptionContract, Side, TradeDecision
from intelligence.fuzzy import fuzzy_size
from intelligence.pipeline import mtf_reason_text
from strategies.iron_condor import CondorCandidate, build_condor, liquidity_problem
from strategies.scoring import entry_score, probability_of_profit

_LEG_SIDES = {LegName.SHORT_PUT: Side.SHORT, LegName.LONG_PUT: Side.LONG,
              LegName.SHORT_CALL: Side.SHORT, LegName.LONG_CALL: Side.LONG}


@dataclass(frozen=True, slots=True)
class BookState:
    open_positions: int
    equity: float
    reserved: float  # buying power already held, dollars
    entries_blocked: str = ""  # non-empty: why the risk layer blocks new entries today


@dataclass(frozen=True, slots=True)
class EntryView:
    """What the entry decision sees at one bar (all values known at ``ts``)."""

    ts: dt.datetime
    spot: float
    features: Mapping[str, float]
    slices: Sequence[ExpirySlice]  # expiries inside the DTE window


RiskCheck = Callable[[CondorCandidate, int], tuple[int, tuple[str, ...]]]


def _skip(reason: str, scores: dict[str, float] | None = None) -> TradeDecision:
    return TradeDecision(Action.SKIP, "iron_condor", reasons=(reason,), scores=scores or {})


def _market_gates(view: EntryView, cfg: AppConfig) -> str | None:
    f = view.features
    vix = f.get("vix", math.nan)
    if not math.isfinite(vix):
        return "VIX unavailable"
    if vix > cfg.filters.vix_max:
        return f"VIX {vix:.2f} > vix-max {cfg.filters.vix_max:g}"
    ivr = f.get("iv_rank", math.nan)
    if cfg.filters.ivr_min > 0 and not (ivr >= cfg.filters.ivr_min):
        return f"IV rank {ivr:.1f} < ivr-min {cfg.filters.ivr_min:g}"
    if cfg.filters.use_vrp_gate and not (f.get("vrp", math.nan) > cfg.filters.vrp_min):
        return f"VRP {f.get('vrp', math.nan):.4f} <= {cfg.filters.vrp_min:g}"
    daily_vol = f.get("rv_daily", math.nan) / math.sqrt(252.0)
    if math.isfinite(daily_vol) and daily_vol > cfg.filters.max_volatility_pct:
        return f"realized daily vol {daily_vol:.2%} > max {cfg.filters.max_volatility_pct:.2%}"
    ind = cfg.indicators
    if ind.use_adx_filter and f.get("adx", math.nan) > ind.adx_threshold_low:
        return f"ADX {f.get('adx', math.nan):.1f} > {ind.adx_threshold_low:g}: trending"
    if ind.use_psar_filter and abs(f.get("psar_p", 0.0)) >= 1.0:
        return f"close {f.get('psar_p', math.nan):+.2f} x 2 ATR from the SAR: trending"
    g = cfg.gates
    gap = f.get("gap", math.nan)
    if g.use_gap_gate and math.isfinite(gap) and abs(gap) > g.max_gap_pct:
        return f"opening gap {gap:+.2%} beyond {g.max_gap_pct:.2%}"
    z = f.get("ratio_z", math.nan)
    if g.use_ratio_bias and math.isfinite(z) and abs(z) > g.ratio_z_threshold:
        bias = "bearish" if z > 0 else "bullish"
        return f"SPY/QQQ ratio z {z:+.2f}: {bias} SPY bias, beyond ±{g.ratio_z_threshold:g}"
    if cfg.gates.use_regime_gate and f.get("regime_crash", 0.0) >= 1.0:
        return "regime CRASH_MODE: stand aside"
    if cfg.mtf.use_mtf and cfg.mtf.use_filter:
        c = f.get("mtf_consensus", math.nan)
        if not math.isfinite(c):
            why = mtf_reason_text(f.get("mtf_reason_code", math.nan)) or "missing timeframe data"
            return f"MTF consensus unavailable: {why}"
        if not cfg.mtf.consensus_min <= c <= cfg.mtf.consensus_max:
            return f"MTF consensus {c:.2f} outside [{cfg.mtf.consensus_min:g}, {cfg.mtf.consensus_max:g}]"
    return None


def choose_condor(view: EntryView, cfg: AppConfig) -> tuple[CondorCandidate | None, list[str]]:
    """Candidate on the expiry nearest the window's middle that passes structure checks."""
    s = cfg.strategy
    if not view.slices:
        return None, [f"no listed expiry with {s.dte_min}-{s.dte_max} DTE"]
    middle = 0.5 * (s.dte_min + s.dte_max)
    reasons: list[str] = []
    for sl in sorted(view.slices, key=lambda x: (abs(x.dte - middle), x.dte)):
        put_extra = 0.0
        if s.use_skew_penalty:
            skew = slice_skew(sl, view.spot)
            put_extra = float(put_wing_extra(skew.skew))
            if put_extra:
                reasons.append(f"{sl.expiry}: skew {skew.skew:.3f} steep, put wing +${put_extra:g}")
        cand, why = build_condor(sl, s.effective_target_delta, s.delta_low, s.delta_high,
                                 s.wing_min, s.wing_max, put_extra, s.underlying, view.ts)
        if cand is None:
            reasons.append(why)
            continue
        if cand.credit_ratio < s.min_credit_ratio:
            reasons.append(f"{sl.expiry}: credit/width {cand.credit_ratio:.2f} < {s.min_credit_ratio:.2f}")
            continue
        if cfg.filters.liquidity_gate:
            problem = liquidity_problem(cand, cfg.filters.max_rel_spread, cfg.filters.min_volume,
                                        cfg.filters.min_open_interest)
            if problem:
                reasons.append(f"{sl.expiry}: liquidity: {problem}")
                continue
        if cand.breach_probability > s.max_breach_prob:
            reasons.append(f"{sl.expiry}: breach probability {cand.breach_probability:.2f} > {s.max_breach_prob:.2f}")
            continue
        return cand, reasons
    return None, reasons


def size_position(cand: CondorCandidate, view: EntryView, book: BookState, cfg: AppConfig
                  ) -> tuple[int, dict[str, float], str]:
    """Contracts to open and the sizing figures; reason is non-empty when the size is zero."""
    per_contract = cand.max_loss * CONTRACT_MULTIPLIER
    if per_contract <= 0:
        return 0, {}, "max loss per contract is zero: credit >= wing (bad quotes)"
    f = view.features
    sizes: dict[str, float] = {"max_loss_per_contract": per_contract}
    if cfg.fuzzy.use_fuzzy or cfg.fuzzy.dynamic_sizing:
        sigma_star = f.get("sigma_star", math.nan) if cfg.fuzzy.dynamic_sizing else 0.0
        q0 = min(cfg.fuzzy.max_contracts,
                 math.floor(book.equity * cfg.fuzzy.position_size_pct / per_contract + 1e-9))
        g_arr, q_arr = fuzzy_size(f.get("fuzzy_confidence", math.nan), sigma_star, q0)
        g = float(g_arr)
        if not math.isfinite(g):
            return 0, sizes, "fuzzy confidence unavailable (warm-up)"
        q_base = int(q_arr)
        sizes.update(g=g, q0=q0)
    else:
        q_base = cfg.strategy.quantity
    q_alloc = math.floor((book.equity * cfg.strategy.max_alloc - book.reserved) / per_contract + 1e-9)
    sizes.update(q_base=q_base, q_alloc=q_alloc)
    qty = min(q_base, q_alloc)
    if qty >= 1:
        return qty, sizes, ""
    if q_base < 1:
        return 0, sizes, f"sizing gives {q_base} contracts (g {sizes.get('g', math.nan):.3f})"
    return 0, sizes, (f"max-alloc {cfg.strategy.max_alloc:g}: ${book.reserved:,.0f} already at risk, "
                      f"one more needs ${per_contract:,.0f}")


def decide_entry(view: EntryView, book: BookState, cfg: AppConfig, risk_check: RiskCheck,
                 score_fn: Callable[[CondorCandidate, Mapping[str, float]], tuple[float, dict[str, float]]]
                 | None = None) -> TradeDecision:
    """ENTER with legs and size, or SKIP with the reason — never raises for market conditions."""
    if book.entries_blocked:
        return _skip(book.entries_blocked)
    if book.open_positions >= cfg.strategy.max_positions:
        return _skip(f"max positions {cfg.strategy.max_positions} open")
    gate = _market_gates(view, cfg)
    if gate:
        return _skip(gate)
    cand, reasons = choose_condor(view, cfg)
    if cand is None:
        return _skip("; ".join(reasons) or "no candidate")
    scores: dict[str, float] = {"credit_ratio": cand.credit_ratio, "breach_prob": cand.breach_probability}
    if score_fn is not None:
        score, parts = score_fn(cand, view.features)
        scores.update(parts, entry_score=score)
        if score < cfg.fuzzy.score_threshold:
            return _skip(f"entry score {score:.0f} < {cfg.fuzzy.score_threshold:g}", scores)
    qty, sizes, why = size_position(cand, view, BookState(book.open_positions, book.equity, book.reserved), cfg)
    scores.update(sizes)
    if qty < 1:
        return _skip(why, scores)
    wanted = qty
    qty, risk_reasons = risk_check(cand, qty)
    if qty < 1:
        return _skip("risk: " + "; ".join(risk_reasons), scores)
    scores["q_final"] = qty
    if qty < wanted:
        scores["risk_cut_from"] = wanted
    legs = tuple(
        Leg(name, OptionContract(cfg.strategy.underlying, cand.expiry, q.strike, q.right), _LEG_SIDES[name], 1, q.mid)
        for name, q in cand.legs.items()
    )
    reason = (f"condor {cand.expiry} {cand.legs[LegName.LONG_PUT].strike:g}/{cand.legs[LegName.SHORT_PUT].strike:g}"
              f"/{cand.legs[LegName.SHORT_CALL].strike:g}/{cand.legs[LegName.LONG_CALL].strike:g} "
              f"credit {cand.credit_mid:.2f} ratio {cand.credit_ratio:.2f} x{qty}"
              + ("".join(f"; {r}" for r in reasons if "skew" in r)))
    return TradeDecision(Action.ENTER, "iron_condor", legs, qty, (reason,), scores)


def rule_signal(features: Mapping[str, float], cfg: AppConfig) -> float:
    """Mean of the range rules in [-1, 1]: +1 each for RSI and %K inside their neutral bands,
    ADX below its low threshold and the Bollinger position inside [0.2, 0.8]; -1 otherwise."""
    ind = cfg.indicators
    checks = (
        ind.rsi_neutral_min <= features.get("rsi", math.nan) <= ind.rsi_neutral_max,
        ind.stoch_neutral_min <= features.get("stoch_k", math.nan) <= ind.stoch_neutral_max,
        features.get("adx", math.nan) <= ind.adx_threshold_low,
        0.2 <= features.get("bb_position", math.nan) <= 0.8,
    )
    return sum(1.0 if ok else -1.0 for ok in checks) / len(checks)


def make_score_fn(cfg: AppConfig) -> Callable[[CondorCandidate, Mapping[str, float]], tuple[float, dict[str, float]]]:
    """Entry score S = S_conf + S_prob + S_rules + S_dir of a candidate (SPEC §4).

    confidence = F_t (blended with the forecaster when on); POP = 1 - |Δ_sp| - |Δ_sc|;
    direction = prob_bull - prob_bear of the forecaster, else the MTF lean 2C - 1, else 0."""

    def score(cand: CondorCandidate, features: Mapping[str, float]) -> tuple[float, dict[str, float]]:
        conf = features.get("fuzzy_confidence", math.nan)
        pop = float(probability_of_profit(cand.legs[LegName.SHORT_PUT].delta, cand.legs[LegName.SHORT_CALL].delta))
        direction = features.get("neural_direction", math.nan)
        if not math.isfinite(direction):
            c = features.get("mtf_consensus", math.nan)
            direction = 2.0 * c - 1.0 if math.isfinite(c) else 0.0
        rules = rule_signal(features, cfg)
        s = entry_score(conf if math.isfinite(conf) else 0.0, pop, rules, direction)
        parts = {"s_conf": float(s.s_conf), "s_prob": float(s.s_prob), "s_rules": float(s.s_rules),
                 "s_dir": float(s.s_dir), "pop": pop}
        return float(s.total), parts

    return score
