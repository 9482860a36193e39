"""What the decision core returns (``TradeDecision``) and how drivers record it (``DecisionRecord``).

Every decision carries machine-readable reason codes beside its text; reports and tests read
the codes from ``decisions.jsonl``, and ``decisions.log`` is only their readable rendering.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, unique
from typing import Any

from core.dto.types import Action, ExitReason, Leg, Structure


@unique
class ReasonCode(Enum):
    """Why the core did (or did not do) something; one table turns a code into a family."""

    # entries
    ENTRY = "entry"
    DRAWDOWN_STOP = "drawdown_stop"
    MAX_POSITIONS = "max_positions"
    VIX_UNAVAILABLE = "vix_unavailable"
    VIX_HIGH = "vix_high"
    IV_RANK_LOW = "iv_rank_low"
    VRP_LOW = "vrp_low"
    REALIZED_VOL_HIGH = "realized_vol_high"
    ADX_TREND = "adx_trend"
    PSAR_TREND = "psar_trend"
    GAP = "gap"
    RATIO_BIAS = "ratio_bias"
    CRASH_REGIME = "crash_regime"
    MTF_UNAVAILABLE = "mtf_unavailable"
    MTF_OUTSIDE_BAND = "mtf_outside_band"
    NO_EXPIRY = "no_expiry"
    NO_CANDIDATE = "no_candidate"
    SCORE_LOW = "score_low"
    SIZE_ZERO = "size_zero"
    RISK_BLOCK = "risk_block"
    BROKER_REJECT = "broker_reject"
    SELECTOR_STAND_ASIDE = "selector_stand_aside"  # the regime selector chose no structure
    SELECTOR_CONDITIONS = "selector_conditions"  # the chosen structure's entry conditions failed
    EVENT_BLACKOUT = "event_blackout"  # no new entries within N sessions before a scheduled event
    # exits, hedges, venue events
    EXIT = "exit"
    ROLL = "roll"  # DTE roll: closed and reopened in the next eligible expiry
    ADJUST = "adjust"  # breakout adjust: the tested side rolled away
    EVENT_CLOSE = "event_close"  # closed before a scheduled event
    HEDGE = "hedge"
    HEDGE_UNWIND = "hedge_unwind"
    EXPIRY_SETTLEMENT = "expiry_settlement"
    ASSIGNMENT = "assignment"
    DELIVERY_FLATTEN = "delivery_flatten"
    END_OF_DATA = "end_of_data"


@dataclass(frozen=True, slots=True)
class TradeDecision:
    """One decision: ENTER (legs x qty), EXIT (a position), HEDGE (shares), SKIP or HALT.

    ``limit`` is the net price per share of one unit the core is willing to trade at
    (credit positive), None for a marketable order filled by the venue's fill model.
    """

    action: Action
    structure: Structure | None = None
    legs: tuple[Leg, ...] = ()
    qty: int = 0
    reasons: tuple[str, ...] = ()
    codes: tuple[ReasonCode, ...] = ()
    scores: Mapping[str, Any] = field(default_factory=dict)
    exit_reason: ExitReason | None = None
    position_id: str = ""
    limit: float | None = None


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """A structured row of ``decisions.jsonl``: a decision or a venue event at ``ts``."""

    ts: dt.datetime
    action: Action
    codes: tuple[ReasonCode, ...]
    text: str
    position_id: str = ""
    exit_reason: ExitReason | None = None
    scores: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        scores = {k: v for k, v in self.scores.items() if not k.startswith("_")}
        return {"ts": self.ts.isoformat(), "action": self.action.value, "codes": [c.value for c in self.codes],
                "text": self.text, "position_id": self.position_id,
                "exit_reason": self.exit_reason.value if self.exit_reason else None, "scores": scores}

    def render(self) -> str:
        """The ``decisions.log`` line."""
        text = f"{self.ts.isoformat()} {self.action.name:<5} "
        if self.position_id and self.action is not Action.ENTER:
            text += f"{self.position_id} "
        text += self.text
        nums = " ".join(f"{k}={v:.4g}" for k, v in self.scores.items()
                        if not k.startswith("_") and isinstance(v, int | float))
        if nums:
            text += " | " + nums
        factors = self.scores.get("_factors")
        if isinstance(factors, str):
            text += f" | {factors}"
        return text
