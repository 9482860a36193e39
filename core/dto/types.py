"""Domain types shared by every room of the project.

Frozen, slotted dataclasses and ``@unique`` enums; no dicts of strings.  Money is in
dollars per share of the option price; a contract is 100 shares (``CONTRACT_MULTIPLIER``).
This module is a leaf: it imports nothing of the project.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from enum import Enum, unique

import numpy as np

CONTRACT_MULTIPLIER = 100


class QuantorError(Exception):
    """Base of every error that is meant for a person (printed as one line, exit code 2)."""


class DataError(QuantorError):
    """A data source is missing, malformed or inconsistent."""


class ConfigError(QuantorError):
    """A configuration value is invalid."""


class BrokerError(QuantorError):
    """An order could not be placed, filled or settled."""


@unique
class OptionRight(Enum):
    CALL = "C"
    PUT = "P"


@unique
class Side(Enum):
    LONG = 1
    SHORT = -1

    @property
    def sign(self) -> int:
        return self._value_  # +1 / -1, read without the Enum descriptor (hot path)


@unique
class Regime(Enum):
    LOW_VOL_RANGE = "LOW_VOL_RANGE"
    HIGH_VOL_RANGE = "HIGH_VOL_RANGE"
    BULL_TREND = "BULL_TREND"
    BEAR_TREND = "BEAR_TREND"
    CRASH_MODE = "CRASH_MODE"


@unique
class ExitReason(Enum):
    PROFIT_TARGET = "profit_target"
    STOP_LOSS = "stop_loss"
    CRASH_MODE = "crash_mode"
    DTE_EXIT = "dte_exit"
    BREAKOUT = "breakout"
    MAX_HOLD = "max_hold"
    EXPIRY = "expiry"
    ASSIGNMENT = "assignment"
    DRAWDOWN_FLATTEN = "drawdown_flatten"
    END_OF_DATA = "end_of_data"
    FRONT_EXPIRY = "front_expiry"  # a multi-expiry position (calendar) closes before its front month settles
    EVENT = "event"  # flat before a scheduled event (FOMC, CPI) when configured
    TIME_EXIT = "time_exit"  # same-day (0-DTE) position closed at the configured intraday time


@unique
class Action(Enum):
    ENTER = "enter"
    EXIT = "exit"
    HEDGE = "hedge"
    HOLD = "hold"
    SKIP = "skip"
    HALT = "halt"  # the daily drawdown stop trips: no new entries until the next session
    ROLL = "roll"  # close a position and open its replacement in one decision (DTE roll, breakout adjust)


@unique
class LegRole(Enum):
    """What a leg is for inside its structure (names, never ``leg2``)."""

    SHORT_PUT = "short_put"
    LONG_PUT = "long_put"
    SHORT_CALL = "short_call"
    LONG_CALL = "long_call"
    LONG_PUT_FAR = "long_put_far"  # a broken-wing butterfly's wide (skipped-strike) put wing
    LONG_CALL_FAR = "long_call_far"  # a broken-wing butterfly's wide (skipped-strike) call wing


@unique
class Structure(Enum):
    """Option structures the decision core can open (each has a spec in ``strategies.structures``)."""

    IRON_CONDOR = "iron_condor"
    PUT_CREDIT_SPREAD = "put_credit_spread"
    CALL_CREDIT_SPREAD = "call_credit_spread"
    WIDE_IRON_CONDOR = "wide_iron_condor"
    CALL_CALENDAR = "call_calendar"
    PUT_CALENDAR = "put_calendar"
    PUT_BROKEN_WING_BUTTERFLY = "put_broken_wing_butterfly"  # bullish, for a credit
    CALL_BROKEN_WING_BUTTERFLY = "call_broken_wing_butterfly"  # bearish, for a credit
    LONG_PUT = "long_put"  # the CRASH_MODE hedge


@unique
class FillModelKind(Enum):
    """How the simulated venue prices a leg: mid, mid moved by a fraction of the half-spread, or crossing."""

    MID = "mid"
    FRACTION = "fraction"
    CROSS = "cross"


@unique
class LedgerKind(Enum):
    OPEN = "open"
    CLOSE = "close"
    FEE = "fee"
    SETTLE = "settle"
    SHARES = "shares"


@unique
class OrderIntent(Enum):
    OPEN = "open"
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class OptionContract:
    underlying: str
    expiry: dt.date
    strike: float
    right: OptionRight

    def __post_init__(self) -> None:
        if not (self.strike > 0 and math.isfinite(self.strike)):
            raise ValueError(f"strike must be positive, got {self.strike}")

    @property
    def occ_symbol(self) -> str:
        """OCC symbol: root + YYMMDD + C/P + strike x 1000 zero-padded to 8 digits."""
        strike_code = int(round(self.strike * 1000))
        return f"{self.underlying}{self.expiry:%y%m%d}{self.right.value}{strike_code:08d}"


@dataclass(frozen=True, slots=True)
class OptionQuote:
    contract: OptionContract
    bid: float
    ask: float
    mid: float
    iv: float
    delta: float
    gamma: float
    theta: float
    vega: float
    volume: float
    open_interest: float
    ts: dt.datetime

    def __post_init__(self) -> None:
        if self.bid > self.ask:
            raise ValueError(f"crossed quote for {self.contract.occ_symbol}: bid {self.bid} > ask {self.ask}")
        if self.bid < 0:
            raise ValueError(f"negative bid for {self.contract.occ_symbol}: {self.bid}")

    @property
    def strike(self) -> float:
        return self.contract.strike

    @property
    def right(self) -> OptionRight:
        return self.contract.right

    @property
    def rel_spread(self) -> float:
        """(ask - bid) / mid; infinite for a zero mid."""
        return (self.ask - self.bid) / self.mid if self.mid > 0 else float("inf")


@dataclass(frozen=True, slots=True, eq=False)
class ExpirySlice:
    """All quotes of one expiry at one timestamp, as arrays sorted by strike.

    ``strikes`` is strictly increasing; every other array has the same length and holds
    the value for the call (``call_*``) or put (``put_*``) at that strike.  Look-ups by
    strike or delta are binary searches (``np.searchsorted``).
    Theta is per calendar day, vega per volatility point (0.01).
    """

    expiry: dt.date
    dte: int  # calendar days from the quote date to expiry
    tau: float  # year fraction used for pricing
    strikes: np.ndarray
    call_bid: np.ndarray
    call_ask: np.ndarray
    call_iv: np.ndarray
    call_delta: np.ndarray
    call_gamma: np.ndarray
    call_theta: np.ndarray
    call_vega: np.ndarray
    call_volume: np.ndarray
    call_oi: np.ndarray
    put_bid: np.ndarray
    put_ask: np.ndarray
    put_iv: np.ndarray
    put_delta: np.ndarray
    put_gamma: np.ndarray
    put_theta: np.ndarray
    put_vega: np.ndarray
    put_volume: np.ndarray
    put_oi: np.ndarray

    def index_of(self, strike: float) -> int:
        """Index of ``strike`` in ``strikes`` or -1 when it is not listed."""
        i = int(np.searchsorted(self.strikes, strike))
        if i < len(self.strikes) and abs(self.strikes[i] - strike) < 1e-9:
            return i
        return -1

    def side_arrays(self, right: OptionRight) -> dict[str, np.ndarray]:
        p = "call_" if right is OptionRight.CALL else "put_"
        names = ("bid", "ask", "iv", "delta", "gamma", "theta", "vega", "volume", "oi")
        return {n: getattr(self, p + n) for n in names}

    def quote(self, strike: float, right: OptionRight, underlying: str, ts: dt.datetime) -> OptionQuote | None:
        i = self.index_of(strike)
        return self.quote_at(i, right, underlying, ts) if i >= 0 else None

    def quote_at(self, i: int, right: OptionRight, underlying: str, ts: dt.datetime) -> OptionQuote:
        """The quote at strike index ``i``."""
        a = self.side_arrays(right)
        bid, ask = float(a["bid"][i]), float(a["ask"][i])
        return OptionQuote(
            contract=OptionContract(underlying, self.expiry, float(self.strikes[i]), right),
            bid=bid,
            ask=ask,
            mid=0.5 * (bid + ask),
            iv=float(a["iv"][i]),
            delta=float(a["delta"][i]),
            gamma=float(a["gamma"][i]),
            theta=float(a["theta"][i]),
            vega=float(a["vega"][i]),
            volume=float(a["volume"][i]),
            open_interest=float(a["oi"][i]),
            ts=ts,
        )


@dataclass(frozen=True, slots=True, eq=False)
class ChainSnapshot:
    """Option chain of one underlying at one timestamp: expiry slices keyed by expiry date."""

    underlying: str
    ts: dt.datetime
    spot: float
    slices: dict[dt.date, ExpirySlice]

    @property
    def expiries(self) -> list[dt.date]:
        return sorted(self.slices)


@dataclass(frozen=True, slots=True)
class Leg:
    """One leg of a position: ``qty`` contracts (ratio x units) at ``entry_price`` per share."""

    role: LegRole
    contract: OptionContract
    side: Side
    qty: int
    entry_price: float

    def __post_init__(self) -> None:
        if self.qty <= 0:
            raise ValueError(f"leg quantity must be positive, got {self.qty}")


@dataclass(frozen=True, slots=True)
class Position:
    """An open multi-leg position.  ``credit`` is the net entry credit per share of one unit
    (positive for a credit structure, negative for a debit); ``max_loss`` is per share of one
    unit: the worst payoff at expiry (widest wing - credit for a condor)."""

    position_id: str
    structure: Structure
    legs: tuple[Leg, ...]
    qty: int
    opened_at: dt.datetime
    credit: float
    max_loss: float
    entry_fees: float = 0.0
    # derived once from the legs (read on every bar by exits, marks and the book)
    front_expiry: dt.date = field(init=False, repr=False, compare=False)
    signed_qty: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _shorts: dict[OptionRight, tuple[float, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        legs = self.legs
        object.__setattr__(self, "front_expiry", min(leg.contract.expiry for leg in legs))
        object.__setattr__(self, "signed_qty", tuple(leg.side.sign * leg.qty for leg in legs))
        object.__setattr__(self, "_shorts", {
            r: tuple(leg.contract.strike for leg in legs if leg.side is Side.SHORT and leg.contract.right is r)
            for r in OptionRight})

    def leg(self, role: LegRole) -> Leg:
        for leg in self.legs:
            if leg.role is role:
                return leg
        raise KeyError(role)

    def short_strikes(self, right: OptionRight) -> tuple[float, ...]:
        return self._shorts[right]


@dataclass(frozen=True, slots=True)
class ForecastState:
    prob_bull: float
    prob_bear: float
    prob_neutral: float
    confidence: float

    def __post_init__(self) -> None:
        total = self.prob_bull + self.prob_bear + self.prob_neutral
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"forecast probabilities must sum to 1, got {total}")

    @classmethod
    def neutral(cls) -> ForecastState:
        return cls(prob_bull=1 / 3, prob_bear=1 / 3, prob_neutral=1 / 3, confidence=0.0)


