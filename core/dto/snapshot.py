"""What the decision core sees at one bar: ``MarketSnapshot`` and its parts.

Features are a typed record: ``FeatureSet`` holds one array per declared feature, aligned to
the bars and validated once at start-up (a source that lacks a feature fails there, naming it);
``FeatureRow`` is a lazy view of one bar — reading ``row.vix`` indexes one array, nothing is
copied per bar.  Chains are reached through ``ChainView`` (expiries, expiry slices), built
lazily by the source.  The book carries open positions with their marks and Greeks, cash,
reserved buying power, start-of-day equity and the drawdown state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, overload

import numpy as np

from core.dto.types import CONTRACT_MULTIPLIER, DataError, ExpirySlice, ForecastState, Position, Regime

# Every feature the decision core, its logs and the trade records read.  The feature
# pipeline produces each one for every bar (NaN where a component is off or warming up).
FEATURE_NAMES: tuple[str, ...] = (
    "vix", "vix_prev_close", "iv_rank", "vrp", "rv_daily", "sigma_star",
    "adx", "rsi", "stoch_k", "bb_upper", "bb_lower", "bb_position", "bb_width", "psar_p", "volume_ratio",
    "sma_distance", "gap", "ratio_z", "regime_code", "regime_crash", "crash_trigger", "day_return", "vix_change",
    "mtf_consensus", "mtf_reason_code", "fuzzy_confidence",
    "mu_mtf", "mu_iv_rank", "mu_vix", "mu_rsi", "mu_adx", "mu_bollinger", "mu_stochastic", "mu_psar",
    "mu_volume", "mu_sma_distance",
    "neural_direction", "neural_prob_neutral", "neural_confidence",
)


_REGIMES = tuple(Regime)


@dataclass(frozen=True, slots=True, eq=False)
class FeatureSet:
    """Every declared feature as an array over the bars, plus the MTF reason table.

    ``mtf_reason_code`` indexes ``mtf_reasons``; the table travels with the arrays, so a
    pickled FeatureSet decodes the same reasons in any process.
    """

    columns: Mapping[str, np.ndarray]
    mtf_reasons: tuple[str, ...] = ()

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], mtf_reasons: tuple[str, ...] = (),
                    source: str = "feature pipeline") -> FeatureSet:
        missing = [name for name in FEATURE_NAMES if name not in arrays]
        if missing:
            raise DataError(f"{source} does not provide the feature(s) {', '.join(missing)} that the decision core "
                            "reads; add them to the source or fix the column names")
        lengths = {len(arrays[name]) for name in FEATURE_NAMES}
        if len(lengths) > 1:
            raise DataError(f"{source}: feature arrays have different lengths {sorted(lengths)}")
        cols = {name: np.asarray(arrays[name], dtype=float) for name in FEATURE_NAMES}
        return cls(cols, tuple(mtf_reasons))

    def __len__(self) -> int:
        return len(self.columns["vix"])

    def row(self, i: int) -> FeatureRow:
        return FeatureRow(self, i)

    def values_at(self, i: int) -> dict[str, float]:
        """Every feature at bar ``i`` (for trade records; not used per bar)."""
        return {name: float(arr[i]) for name, arr in self.columns.items()}


class _Feature:
    """A declared feature of ``FeatureRow``: reads one element of its array."""

    __slots__ = ("name",)

    def __init__(self) -> None:
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> _Feature: ...

    @overload
    def __get__(self, obj: FeatureRow, owner: type) -> float: ...

    def __get__(self, obj: FeatureRow | None, owner: type) -> float | _Feature:
        if obj is None:
            return self
        return float(obj.features.columns[self.name][obj.i])


class FeatureRow:
    """The features of one bar (a view; nothing is copied)."""

    __slots__ = ("features", "i")

    vix = _Feature()  # VIX as the chain model sees it at the bar
    vix_prev_close = _Feature()
    iv_rank = _Feature()
    vrp = _Feature()
    rv_daily = _Feature()
    sigma_star = _Feature()
    adx = _Feature()
    rsi = _Feature()
    stoch_k = _Feature()
    bb_upper = _Feature()
    bb_lower = _Feature()
    bb_position = _Feature()
    bb_width = _Feature()
    psar_p = _Feature()
    volume_ratio = _Feature()
    sma_distance = _Feature()
    gap = _Feature()
    ratio_z = _Feature()
    regime_code = _Feature()
    regime_crash = _Feature()
    crash_trigger = _Feature()  # bitmask of the CRASH_MODE rules that fired (intelligence.regime)
    day_return = _Feature()  # close / previous session close - 1, live
    vix_change = _Feature()  # previous session's VIX change on the session before
    mtf_consensus = _Feature()
    mtf_reason_code = _Feature()
    fuzzy_confidence = _Feature()
    mu_mtf = _Feature()
    mu_iv_rank = _Feature()
    mu_vix = _Feature()
    mu_rsi = _Feature()
    mu_adx = _Feature()
    mu_bollinger = _Feature()
    mu_stochastic = _Feature()
    mu_psar = _Feature()
    mu_volume = _Feature()
    mu_sma_distance = _Feature()
    neural_direction = _Feature()
    neural_prob_neutral = _Feature()
    neural_confidence = _Feature()

    def __init__(self, features: FeatureSet, i: int) -> None:
        self.features = features
        self.i = i

    def get(self, name: str) -> float:
        """A declared feature by name (KeyError for an undeclared one — never a default)."""
        if name not in FEATURE_NAMES:
            raise KeyError(f"{name!r} is not a declared feature")
        return float(self.features.columns[name][self.i])

    @property
    def regime(self) -> Regime | None:
        code = self.regime_code
        return _REGIMES[int(code)] if np.isfinite(code) else None

    @property
    def mtf_reason(self) -> str:
        code = self.mtf_reason_code
        table = self.features.mtf_reasons
        return table[int(code)] if np.isfinite(code) and 0 <= int(code) < len(table) else ""


@dataclass(frozen=True, slots=True)
class Bar:
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class SessionFacts:
    session_date: dt.date
    minutes_to_close: float
    last_bar: bool  # the last bar of the session (expiring positions settle at its close)
    first_bar: bool
    next_ex_dividend: float | None  # dividend per share when the next session is ex-dividend
    sessions_to_event: int | None = None  # sessions until the next scheduled event (0 = today); None: not tracked
    next_event: str = ""  # e.g. "2018-03-13 cpi"


class ChainView(Protocol):
    """Option chains at the snapshot's timestamp."""

    def expiries(self) -> list[dt.date]: ...

    def expiry_slice(self, expiry: dt.date) -> ExpirySlice: ...


@dataclass(frozen=True, slots=True, eq=False)
class StaticChain:
    """A chain view over already-built slices (tests, replays, pickling)."""

    slices: Mapping[dt.date, ExpirySlice]

    def expiries(self) -> list[dt.date]:
        return sorted(self.slices)

    def expiry_slice(self, expiry: dt.date) -> ExpirySlice:
        return self.slices[expiry]


@dataclass(frozen=True, slots=True, eq=False)
class LegMarks:
    """Per-leg quotes and per-share Greeks of one position at one bar (legs in position order)."""

    bid: np.ndarray
    ask: np.ndarray
    mid: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray
    theta: np.ndarray


@dataclass(frozen=True, slots=True, eq=False)
class BookPosition:
    position: Position
    marks: LegMarks
    reserved: float  # buying power the venue holds for it, dollars

    @property
    def weights(self) -> np.ndarray:
        """Signed contracts x 100 per leg: dollars per $1 of per-share price."""
        return np.array(self.position.signed_qty, float) * CONTRACT_MULTIPLIER

    @property
    def value(self) -> float:
        """Value at mid, dollars (short legs count negative)."""
        return float(np.dot(self.position.signed_qty, self.marks.mid)) * CONTRACT_MULTIPLIER

    @property
    def mark_debit(self) -> float:
        """Per share of one unit: what closing at mid would cost (negative = receive)."""
        pos = self.position
        return -float(sum(q * mid for q, mid in zip(pos.signed_qty, self.marks.mid.tolist(), strict=True))) / pos.qty


@dataclass(frozen=True, slots=True, eq=False)
class Book:
    """The account as the decision core sees it at a bar (marks at this bar)."""

    positions: tuple[BookPosition, ...]
    cash: float
    reserved: float
    shares: float  # all stock held (hedge + assignment delivery)
    hedge_shares: float  # the part held as a delta hedge
    spot: float
    start_of_day_equity: float
    halted: bool  # the daily drawdown stop already tripped earlier this session

    @property
    def equity(self) -> float:
        """Cash + open options at mid + shares at the bar's close."""
        value = 0.0
        for bp in self.positions:
            value += bp.value
        return self.cash + value + self.shares * self.spot


@dataclass(frozen=True, slots=True, eq=False)
class MarketSnapshot:
    """Everything one decision may use, all known at ``ts`` (closed bars only)."""

    ts: dt.datetime
    session: SessionFacts
    bar: Bar  # the base-timeframe bar that just closed
    closed_bars: Mapping[int, Bar]  # minutes -> last closed bar of that timeframe
    features: FeatureRow
    chain: ChainView
    book: Book
    forecast: ForecastState | None = None
    underlying: str = "SPY"

    @property
    def spot(self) -> float:
        return self.bar.close
