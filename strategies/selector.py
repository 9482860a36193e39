"""Regime strategy selector (SPEC §5): the bar's regime -> a structure, or none, as data.

The table is configuration (``strategy.selector``: regime name -> structure value or
``"none"``); the default follows SPEC §5::

    LOW_VOL_RANGE  -> call_calendar               (only when IV rank < 20 and VIX < 12)
    HIGH_VOL_RANGE -> wide_iron_condor
    BULL_TREND     -> put_broken_wing_butterfly   (bullish, for a credit)
    BEAR_TREND     -> call_broken_wing_butterfly  (bearish, for a credit)
    CRASH_MODE     -> none (stand aside); with ``strategy.crash_mode = "long_put"`` a long put

Each structure has a ``Profile`` (data, below): its own DTE window, delta band, minimum
credit/width and entry conditions, each ``None`` = the strategy's configured value.  A hedge
profile (the long put) skips the premium-selling market gates (VIX max, IV rank, CRASH_MODE
stand-aside ...): it is bought *because* the market is in a crash.

With ``strategy.selector_forecast`` (and the forecaster on) a trend regime also needs the
forecast to agree: BULL_TREND with a bearish lean (prob_bull - prob_bear < 0) or BEAR_TREND
with a bullish one stands aside; a missing forecast does not block.

The selector is off by default (``strategy.use_selector``); then the entry opens
``strategy.structure`` exactly as before.  When on, every entry decision records the regime
and the structure (``scores["regime"]``, ``scores["structure"]``, and the decision's
``structure``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from core.config import AppConfig
from core.dto import FeatureRow, Regime, Structure
from strategies.structures.catalog import spec_of
from strategies.structures.spec import StructureSpec

STAND_ASIDE = "none"

DEFAULT_TABLE: dict[str, str] = {
    Regime.LOW_VOL_RANGE.value: Structure.CALL_CALENDAR.value,
    Regime.HIGH_VOL_RANGE.value: Structure.WIDE_IRON_CONDOR.value,
    Regime.BULL_TREND.value: Structure.PUT_BROKEN_WING_BUTTERFLY.value,
    Regime.BEAR_TREND.value: Structure.CALL_BROKEN_WING_BUTTERFLY.value,
    Regime.CRASH_MODE.value: STAND_ASIDE,
}


@dataclass(frozen=True, slots=True)
class Profile:
    """How one structure is selected; ``None`` fields fall back to ``cfg.strategy``."""

    kind: Structure
    dte: tuple[int, int] | None = None
    delta: tuple[float, float, float] | None = None  # low, target, high |delta| of the ByDelta legs
    min_credit_ratio: float | None = None
    max_iv_rank: float | None = None  # enter only below it
    max_vix: float | None = None  # enter only below it
    market_gates: bool = True  # False: a hedge, bought in the markets the gates keep premium sellers out of


PROFILES: dict[Structure, Profile] = {
    Structure.CALL_CALENDAR: Profile(Structure.CALL_CALENDAR, max_iv_rank=20.0, max_vix=12.0),
    Structure.PUT_CALENDAR: Profile(Structure.PUT_CALENDAR, max_iv_rank=20.0, max_vix=12.0),
    # a broken-wing butterfly sells its body nearer the money and needs only a credit (> 0); with
    # put skew the call body must sit nearer the money than the put body to collect one
    Structure.PUT_BROKEN_WING_BUTTERFLY: Profile(Structure.PUT_BROKEN_WING_BUTTERFLY, delta=(0.20, 0.25, 0.35),
                                                 min_credit_ratio=0.0),
    Structure.CALL_BROKEN_WING_BUTTERFLY: Profile(Structure.CALL_BROKEN_WING_BUTTERFLY, delta=(0.35, 0.45, 0.49),
                                                  min_credit_ratio=0.0),
    Structure.LONG_PUT: Profile(Structure.LONG_PUT, delta=(0.15, 0.25, 0.35), market_gates=False),
}


def profile_of(kind: Structure) -> Profile:
    return PROFILES.get(kind, Profile(kind))


@dataclass(frozen=True, slots=True)
class Plan:
    """What the entry opens on this bar and how it selects it (``cfg.strategy`` + the profile)."""

    spec: StructureSpec
    dte_min: int
    dte_max: int
    delta_low: float
    target_delta: float
    delta_high: float
    min_credit_ratio: float
    market_gates: bool = True
    regime: Regime | None = None  # set when the selector chose it

    @classmethod
    def of(cls, kind: Structure, cfg: AppConfig, regime: Regime | None = None) -> Plan:
        s = cfg.strategy
        p = profile_of(kind)
        lo, hi = p.dte if p.dte is not None else (s.dte_min, s.dte_max)
        d_lo, d_t, d_hi = p.delta if p.delta is not None else (s.delta_low, s.effective_target_delta, s.delta_high)
        ratio = p.min_credit_ratio if p.min_credit_ratio is not None else s.min_credit_ratio
        return cls(spec_of(kind), lo, hi, d_lo, d_t, d_hi, ratio, p.market_gates, regime)


@dataclass(frozen=True, slots=True)
class SelectorSettings:
    use_selector: bool
    table: Mapping[str, str]
    crash_mode: str  # "stand_aside" | "long_put"
    use_forecast: bool = False

    @classmethod
    def from_config(cls, cfg: AppConfig) -> SelectorSettings:
        s = cfg.strategy
        table = dict(DEFAULT_TABLE)
        table.update(s.selector)
        return cls(s.use_selector, table, s.crash_mode, s.selector_forecast)


def choose(regime: Regime | None, settings: SelectorSettings, direction: float = math.nan
           ) -> tuple[Structure | None, str]:
    """The structure for ``regime`` (None = stand aside) and the line that says why;
    ``direction`` is the forecast's lean prob_bull - prob_bear (NaN when there is none)."""
    if regime is None:
        return None, "selector: regime unavailable: stand aside"
    if regime is Regime.CRASH_MODE and settings.crash_mode == "long_put":
        return Structure.LONG_PUT, f"selector: {regime.value} -> long_put (crash hedge)"
    name = settings.table.get(regime.value, STAND_ASIDE)
    if name == STAND_ASIDE:
        return None, f"selector: {regime.value} -> stand aside"
    if settings.use_forecast and math.isfinite(direction) and (
            (regime is Regime.BULL_TREND and direction < 0) or (regime is Regime.BEAR_TREND and direction > 0)):
        return None, f"selector: {regime.value} but the forecast leans {direction:+.2f}: stand aside"
    return Structure(name), f"selector: {regime.value} -> {name}"


def conditions_problem(kind: Structure, f: FeatureRow) -> str:
    """The profile's entry conditions that fail on this bar ("" when they hold)."""
    p = profile_of(kind)
    if p.max_iv_rank is not None and not (f.iv_rank < p.max_iv_rank):
        return f"{kind.value} needs IV rank < {p.max_iv_rank:g}, have {f.iv_rank:.1f}"
    vix = f.vix
    if p.max_vix is not None and not (math.isfinite(vix) and vix < p.max_vix):
        return f"{kind.value} needs VIX < {p.max_vix:g}, have {vix:.2f}"
    return ""
