"""Typed, frozen, validated configuration — the single source of every default.

One pydantic model per component (``extra="forbid"`` so a typo is an error, ``frozen`` so a
config cannot drift during a run).  Precedence: command line > ``--config FILE`` (TOML or
YAML) > the defaults written here.  ``load_config`` turns every validation failure into a
``ConfigError`` whose message is one line naming the option, the value and the allowed range.

This module is a leaf: it imports nothing of the project but ``core.dto``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.dto import ConfigError, FillModelKind, Regime, Structure

DEFAULT_FUZZY_WEIGHTS: dict[str, float] = {
    "mtf": 0.18,
    "iv_rank": 0.14,
    "vix": 0.11,
    "rsi": 0.10,
    "adx": 0.10,
    "bollinger": 0.09,
    "stochastic": 0.08,
    "psar": 0.07,
    "volume": 0.07,
    "sma_distance": 0.06,
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class RunConfig(_Frozen):
    seed: int = Field(7, ge=0, le=2**32 - 1, description="every random choice derives from it")
    out: str | None = Field(None, description="output folder; default reports/<run-id>/")
    no_plot: bool = Field(False, description="skip charts and the PDF report")
    debug: bool = Field(False, description="show tracebacks")
    progress: bool = Field(True, description="show progress bars")
    force: bool = Field(False, description="replace a previous run folder of this tool / overwrite an existing "
                                           "--model checkpoint")


class UnderlyingConfig(_Frozen):
    """Per-underlying listing and data facts (``[data.underlyings.QQQ]`` in a config file)."""

    strike_step: float = Field(1.0, gt=0.0, le=100.0, description="strike increment within +-15% of spot, $")
    strike_step_far: float = Field(5.0, gt=0.0, le=500.0, description="strike increment further out, $")
    dividend_yield: float | None = Field(None, ge=0.0, le=0.10, description="default: data.dividend_yield")
    chain_max_lag_seconds: float | None = Field(None, gt=0, description="default: data.chain_max_lag_seconds or "
                                                                        "the SPEC limit (600 s SPY/QQQ, 900 s SPX)")

    @model_validator(mode="after")
    def _steps_in_order(self) -> UnderlyingConfig:
        if self.strike_step_far < self.strike_step:
            raise ValueError(f"strike_step_far {self.strike_step_far} must be >= strike_step {self.strike_step}")
        return self


def _default_underlyings() -> dict[str, dict[str, float]]:
    # trailing dividend yields of the ETFs (rounded): SPY ~1.8%, QQQ ~0.7%, IWM ~1.3%
    return {"SPY": {"dividend_yield": 0.018}, "QQQ": {"dividend_yield": 0.007}, "IWM": {"dividend_yield": 0.013}}


class DataConfig(_Frozen):
    source: Literal["embedded", "synthetic", "files"] = "embedded"
    spot_data: str | None = Field(None, description="vendor bar file (CSV/Parquet); implies source=files")
    options_data: str | None = Field(None, description="vendor chain file (CSV/Parquet); implies source=files")
    rate: float = Field(0.02, ge=-0.02, le=0.20, description="risk-free rate, continuous")
    dividend_yield: float = Field(0.018, ge=0.0, le=0.10, description="continuous dividend yield")
    vix_data: str | None = Field(None, description="vendor VIX file (date, vix); default: ATM IV proxy of the chains")
    chain_max_lag_seconds: float | None = Field(None, gt=0, description="vendor chains: as-of lag limit (600 s SPY)")
    chain_max_stale_fraction: float = Field(0.2, ge=0.0, le=1.0, description="vendor chains: abort above this")
    synthetic_start: dt.date = Field(dt.date(2018, 1, 2), description="first day of the synthetic market")
    synthetic_end: dt.date = Field(dt.date(2019, 12, 31), description="last day of the synthetic market")
    underlyings: dict[str, dict[str, float]] = Field(
        default_factory=_default_underlyings,
        description="per underlying: strike_step, strike_step_far, dividend_yield, chain_max_lag_seconds")

    @field_validator("underlyings")
    @classmethod
    def _underlyings_valid(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        return {str(k).upper(): UnderlyingConfig(**v).model_dump(exclude_none=True) for k, v in value.items()}

    def for_underlying(self, symbol: str) -> tuple[tuple[float, float], float, float | None]:
        """(strike steps, dividend yield, chain lag limit or None) of ``symbol``: its own entry, else the
        data-wide values."""
        u = UnderlyingConfig(**self.underlyings.get(symbol.upper(), {}))
        div = u.dividend_yield if u.dividend_yield is not None else self.dividend_yield
        lag = self.chain_max_lag_seconds if self.chain_max_lag_seconds is not None else u.chain_max_lag_seconds
        return (u.strike_step, u.strike_step_far), div, lag

    @model_validator(mode="before")
    @classmethod
    def _files_imply_source(cls, values: Any) -> Any:
        if isinstance(values, dict) and (values.get("spot_data") or values.get("options_data")):
            values = {**values, "source": "files"}
        return values

    @model_validator(mode="after")
    def _cross(self) -> DataConfig:
        if self.source == "files" and not self.spot_data:
            raise ValueError("--data-source files needs --spot-data FILE")
        if self.synthetic_start >= self.synthetic_end:
            raise ValueError("synthetic_start must be before synthetic_end")
        return self


SESSION_OPEN_MINUTE = 9 * 60 + 30  # 09:30 New York
SESSION_MINUTES = 390  # 09:30 to 16:00 (13:00 on early-close days: later entry times skip those days)


def _hhmm(minute_of_day: int) -> str:
    return f"{minute_of_day // 60:02d}:{minute_of_day % 60:02d}"


class BacktestConfig(_Frozen):
    start: dt.date | None = Field(None, description="first day (default: first day of the last full year)")
    end: dt.date | None = Field(None, description="last day (default: last day of the data)")
    cash: float = Field(25_000.0, gt=0, le=1e10, description="starting capital in dollars")
    samples: int = Field(0, ge=0, description="keep only the last N bars (0 = all)")
    bar_minutes: Literal[1, 5] = Field(5, description="base bar size that drives the clock")
    entry_time: str = Field("10:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="daily entry check, ET")
    entry_every_bar: bool = Field(False, description="evaluate entries on every bar instead of once a day")
    fill_model: FillModelKind = Field(FillModelKind.FRACTION, description="per-leg fill price model")
    fill_fraction: float = Field(0.5, ge=0.0, le=1.0, description="fraction of the half-spread paid vs mid")
    commission_per_contract: float = Field(0.65, ge=0.0, le=10.0)
    reg_fee_per_contract: float = Field(0.03, ge=0.0, le=1.0, description="exchange + regulatory fees")
    assignment_close: Literal["next_open", "same_close"] = Field("next_open")

    @model_validator(mode="after")
    def _dates(self) -> BacktestConfig:
        if self.start and self.end and self.start >= self.end:
            raise ValueError(f"--bt-start {self.start} must be before --bt-end {self.end}")
        hour, minute = (int(x) for x in self.entry_time.split(":"))
        after_open = hour * 60 + minute - SESSION_OPEN_MINUTE
        if not self.entry_every_bar and not (self.bar_minutes <= after_open <= SESSION_MINUTES
                                             and after_open % self.bar_minutes == 0):
            first = _hhmm(SESSION_OPEN_MINUTE + self.bar_minutes)
            where = "outside the session" if not 0 < after_open <= SESSION_MINUTES else "not a bar close"
            raise ValueError(f"--entry-time {self.entry_time} is {where}: entries are checked at the close of a "
                             f"{self.bar_minutes}-minute bar, {first} to 16:00 New York time "
                             f"(every {self.bar_minutes} minutes)")
        return self


class StrategyConfig(_Frozen):
    underlying: str = Field("SPY", pattern=r"^[A-Z]{1,6}$")
    quantity: int = Field(1, ge=1, le=1000, description="contracts when sizing is static")
    dte_min: int = Field(30, ge=0, le=365)
    dte_max: int = Field(45, ge=0, le=365)
    delta_low: float = Field(0.10, gt=0.0, lt=0.5)
    delta_high: float = Field(0.25, gt=0.0, lt=0.5)
    target_delta: float | None = Field(None, gt=0.0, lt=0.5, description="default: middle of the band")
    wing_min: float = Field(5.0, gt=0.0, le=100.0)
    wing_max: float = Field(10.0, gt=0.0, le=100.0)
    min_credit_ratio: float = Field(0.15, ge=0.0, lt=1.0)
    max_positions: int = Field(3, ge=1, le=100)
    max_alloc: float = Field(0.15, gt=0.0, le=1.0, description="max fraction of equity at risk")
    use_skew_penalty: bool = Field(False, description="widen the put wing by $5 when skew is steep")
    max_breach_prob: float = Field(0.60, gt=0.0, le=1.0, description="sum of short |deltas| allowed")
    structure: Structure = Field(Structure.IRON_CONDOR, description="structure to open (a spec in strategies/)")
    use_selector: bool = Field(False, description="open the structure the regime selects (strategies/selector.py)")
    selector: dict[str, str] = Field(default_factory=dict,
                                     description="regime -> structure or 'none', over the SPEC table")
    crash_mode: Literal["stand_aside", "long_put"] = Field(
        "stand_aside", description="with the selector: CRASH_MODE stands aside or buys a long-put hedge")
    selector_forecast: bool = Field(False, description="with the selector: trend regimes need the forecast to agree")

    @field_validator("selector")
    @classmethod
    def _selector(cls, v: dict[str, str]) -> dict[str, str]:
        regimes = {r.value for r in Regime}
        kinds = {k.value for k in Structure} | {"none"}
        for regime, kind in v.items():
            if regime not in regimes:
                raise ValueError(f"selector regime {regime!r} unknown; allowed {sorted(regimes)}")
            if kind not in kinds:
                raise ValueError(f"selector structure {kind!r} for {regime} unknown; allowed {sorted(kinds)}")
        return v

    @model_validator(mode="after")
    def _cross(self) -> StrategyConfig:
        if self.dte_min > self.dte_max:
            raise ValueError(f"--dte-min {self.dte_min} must be <= --dte-max {self.dte_max}")
        if self.delta_low > self.delta_high:
            raise ValueError(f"--delta-low {self.delta_low} must be <= --delta-high {self.delta_high}")
        if self.wing_min > self.wing_max:
            raise ValueError(f"--wing-min {self.wing_min} must be <= --wing-max {self.wing_max}")
        td = self.target_delta
        if td is not None and not self.delta_low <= td <= self.delta_high:
            raise ValueError(f"target_delta {td} must lie in [{self.delta_low}, {self.delta_high}]")
        return self

    @property
    def effective_target_delta(self) -> float:
        return self.target_delta if self.target_delta is not None else 0.5 * (self.delta_low + self.delta_high)


class ExitConfig(_Frozen):
    profit_target: bool = Field(True, description="use the profit target (off: hold for the other exits)")
    profit_pct: float = Field(0.50, gt=0.0, le=1.0, description="close at this fraction of credit captured")
    loss_multiple: float = Field(1.5, gt=0.0, le=10.0, description="close when loss reaches this x credit")
    max_hold_days: int = Field(14, ge=1, le=365)
    dte_exit: int = Field(7, ge=0, le=60, description="close when DTE falls below this")
    breakout_exit: bool = Field(True, description="close when a Bollinger breakout crosses a short strike")
    on_dte: Literal["close", "roll"] = Field("close", description="DTE exit: close, or roll to the next expiry")
    on_breakout: Literal["close", "adjust"] = Field(
        "close", description="breakout exit: close, or roll the tested side away (same expiry)")
    intraday_exit_time: str | None = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
                                           description="HH:MM: close same-day (0-DTE) positions then")


class FilterConfig(_Frozen):
    ivr_min: float = Field(0.0, ge=0.0, le=100.0)
    vix_max: float = Field(25.0, gt=0.0, le=200.0)
    vix_threshold_low: float = Field(20.0, gt=0.0, le=200.0, description="VIX above it is a high-vol regime")
    max_volatility_pct: float = Field(0.03, gt=0.0, le=1.0,
                                      description="no entry when 20-day realized daily vol exceeds it")
    use_vrp_gate: bool = Field(False, description="enter only when IV_ATM - RV > vrp_min")
    vrp_min: float = Field(0.02, ge=-1.0, le=1.0)
    liquidity_gate: bool = Field(True)
    max_rel_spread: float = Field(0.35, gt=0.0, le=2.0, description="(ask-bid)/mid of each short leg")
    min_volume: float = Field(0.0, ge=0.0)
    min_open_interest: float = Field(100.0, ge=0.0)


class MTFConfig(_Frozen):
    use_mtf: bool = Field(False, description="compute the multi-timeframe consensus")
    use_filter: bool = Field(True, description="with use_mtf: gate entries on the consensus band")
    timeframes: tuple[int, ...] = Field((1, 5, 15), min_length=1, max_length=6)
    consensus_min: float = Field(0.40, ge=0.0, le=1.0)
    consensus_max: float = Field(0.60, ge=0.0, le=1.0)

    @field_validator("timeframes")
    @classmethod
    def _tfs(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        allowed = {1, 5, 15, 60}
        bad = [t for t in v if t not in allowed]
        if bad:
            raise ValueError(f"timeframes {bad} not in {sorted(allowed)} minutes")
        return tuple(sorted(set(v)))

    @model_validator(mode="after")
    def _band(self) -> MTFConfig:
        if self.consensus_min > self.consensus_max:
            raise ValueError(f"--mtf-consensus-min {self.consensus_min} must be <= --mtf-consensus-max")
        return self


class IndicatorConfig(_Frozen):
    rsi_neutral_min: float = Field(40.0, ge=0.0, le=100.0)
    rsi_neutral_max: float = Field(60.0, ge=0.0, le=100.0)
    stoch_neutral_min: float = Field(30.0, ge=0.0, le=100.0)
    stoch_neutral_max: float = Field(70.0, ge=0.0, le=100.0)
    adx_threshold_low: float = Field(25.0, ge=0.0, le=100.0)
    adx_threshold_high: float = Field(40.0, ge=0.0, le=100.0)
    use_adx_filter: bool = Field(False, description="no entry while ADX > adx_threshold_low (trend)")
    bbands_squeeze_threshold: float = Field(0.04, gt=0.0, le=1.0)
    sma_max_distance: float = Field(0.02, gt=0.0, le=1.0)
    psar_acceleration: float = Field(0.02, gt=0.0, le=1.0)
    psar_max_acceleration: float = Field(0.20, gt=0.0, le=1.0)
    use_psar_filter: bool = Field(False, description="no entry while close is 2 ATR or more beyond the SAR")

    @model_validator(mode="after")
    def _ranges(self) -> IndicatorConfig:
        for lo, hi in (("rsi_neutral_min", "rsi_neutral_max"), ("stoch_neutral_min", "stoch_neutral_max"),
                       ("adx_threshold_low", "adx_threshold_high"),
                       ("psar_acceleration", "psar_max_acceleration")):
            if getattr(self, lo) > getattr(self, hi):
                raise ValueError(f"{lo} {getattr(self, lo)} must be <= {hi} {getattr(self, hi)}")
        return self


class FuzzyConfig(_Frozen):
    use_fuzzy: bool = False
    dynamic_sizing: bool = Field(False, description="Q = floor(Q0 F_t (1 - sigma*)); switches use_fuzzy on")
    position_size_pct: float = Field(0.05, gt=0.0, le=1.0, description="base risk budget per trade")
    max_contracts: int = Field(5, ge=1, le=1000, description="Q0, the static maximum for fuzzy sizing")
    weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_FUZZY_WEIGHTS))
    neural_weight: float = Field(0.10, ge=0.0, le=1.0, description="w_n, blend of the forecaster")
    score_threshold: float = Field(40.0, ge=0.0, le=100.0, description="entry score needed to enter")

    @model_validator(mode="before")
    @classmethod
    def _dynamic_implies_fuzzy(cls, values: Any) -> Any:
        """Dynamic sizing scales the fuzzy size, so it switches fuzzy sizing on (README "Modes")."""
        if isinstance(values, dict) and values.get("dynamic_sizing") is True:
            values = {**values, "use_fuzzy": True}
        return values

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(DEFAULT_FUZZY_WEIGHTS))
        if unknown:
            raise ValueError(f"unknown fuzzy weight(s) {unknown}; allowed {sorted(DEFAULT_FUZZY_WEIGHTS)}")
        missing = sorted(set(DEFAULT_FUZZY_WEIGHTS) - set(v))
        if missing:
            raise ValueError(f"fuzzy weights missing {missing}")
        if any(w < 0 for w in v.values()):
            raise ValueError("fuzzy weights must be >= 0")
        total = sum(v.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"fuzzy weights sum to {total:.6f}; they must sum to 1 (±1e-6)")
        return v


class RiskConfig(_Frozen):
    max_trade_delta: float = Field(30.0, gt=0.0)
    max_trade_vega: float = Field(100.0, gt=0.0)
    max_portfolio_delta: float = Field(200.0, gt=0.0)
    max_portfolio_gamma: float = Field(50.0, gt=0.0)
    max_portfolio_vega: float = Field(500.0, gt=0.0)
    max_daily_drawdown: float = Field(0.02, gt=0.0, le=1.0, description="of start-of-day equity")
    max_account_risk_per_trade: float = Field(0.02, gt=0.0, le=1.0)
    flatten_on_drawdown: bool = False
    gamma_dte_days: int = Field(7, ge=0, le=60, description="positions this close to expiry face the gamma cap")
    beta_to_spy: float = Field(1.0, gt=-5.0, le=5.0, description="beta of the underlying to SPY (greeks.csv)")
    max_near_expiry_gamma: float = Field(25.0, gt=0.0)


class HedgeConfig(_Frozen):
    enable_hedge: bool = False
    hedge_threshold: float = Field(0.10, gt=0.0, le=1.0, description="|net delta per contract| that triggers")


class GatesConfig(_Frozen):
    use_gap_gate: bool = False
    max_gap_pct: float = Field(0.0019, gt=0.0, le=0.2)
    use_ratio_bias: bool = False
    ratio_z_threshold: float = Field(2.0, gt=0.0, le=10.0)
    use_regime_gate: bool = Field(True, description="stand aside in CRASH_MODE")
    event_blackout_sessions: int | None = Field(
        None, ge=0, le=20, description="no new entries within N sessions before an FOMC / CPI day (0: the day)")
    event_close_sessions: int | None = Field(
        None, ge=0, le=20, description="close every position from N sessions before an FOMC / CPI day")
    event_kinds: tuple[Literal["fomc", "cpi"], ...] = Field(("fomc", "cpi"), min_length=1)


class ForecasterConfig(_Frozen):
    use_neural: bool = False
    model: str = "models/mamba_active.pth"
    d_model: int = Field(256, ge=4, le=4096)
    layers: int = Field(12, ge=1, le=64)


class OptimizerConfig(_Frozen):
    """The six-phase optimizer (``--mode optimize``, SPEC §7; README "Optimizer")."""

    phases: tuple[int, ...] = Field((1, 2, 3, 4, 5, 6), min_length=1, description="phases to run, in order (1-6)")
    top_n: int = Field(100, ge=1, description="rows of top100.csv")
    workers: int | None = Field(None, ge=1, le=256, description="worker processes (default: the CPU count)")
    oos_fraction: float = Field(0.3, gt=0.0, lt=1.0, description="unused: the out-of-sample range is "
                                                                 "oos_start/oos_end")
    sampler: Literal["grid", "tpe"] = Field("grid", description="grid: every point; tpe: Optuna TPE, trials per phase")
    trials: int = Field(60, ge=1, le=100_000, description="tpe: points asked per phase")
    executor: Literal["process", "ray"] = Field("process", description="where evaluations run")
    ray_address: str | None = Field(None, description="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)")
    min_trades: int = Field(10, ge=0, le=100_000, description="fewer closed trades score the worst fitness")
    oos_start: dt.date | None = Field(None, description="out-of-sample start (default: the day after --bt-end)")
    oos_end: dt.date | None = Field(None, description="out-of-sample end (default: the end of the data)")
    walk_forward: int = Field(0, ge=0, le=20, description="walk-forward folds (0: off)")
    walk_forward_mode: Literal["anchored", "rolling"] = Field("anchored", description="anchored: train from the "
                                                              "in-sample start; rolling: on the block before the test")
    purge_days: int = Field(30, ge=0, le=365, description="days between a fold's training end and its test start")
    verify: int = Field(20, ge=0, le=10_000, description="evaluated sets re-run on the reference engine")
    grids: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                             description="phase -> {config key: [values]}: replaces its SPEC grid")

    @field_validator("phases")
    @classmethod
    def _phases(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        bad = [p for p in v if p not in (1, 2, 3, 4, 5, 6)]
        if bad:
            raise ValueError(f"phases {bad} are not phases 1-6")
        return tuple(sorted(set(v)))

    @model_validator(mode="after")
    def _oos(self) -> OptimizerConfig:
        if self.oos_start and self.oos_end and self.oos_start >= self.oos_end:
            raise ValueError(f"--oos-start {self.oos_start} must be before --oos-end {self.oos_end}")
        return self


class LiveConfig(_Frozen):
    """Alpaca live trading (``--mode live --alpaca``, core/live/): paper unless --live-money and allow_live_money."""

    paper: bool = True
    once: bool = False
    dry_run: bool = False
    allow_live_money: bool = Field(False, description="real money needs this and --live-money")
    api_key_id: str | None = Field(None, exclude=True, repr=False,
                                   description="default $APCA_API_KEY_ID; never written to any output")
    api_secret_key: str | None = Field(None, exclude=True, repr=False,
                                       description="default $APCA_API_SECRET_KEY; never written to any output")
    broker_url: str | None = Field(None, description="trading endpoint override (--broker-url)")
    data_url: str | None = Field(None, description="market-data endpoint override (--data-url)")
    db_url: str | None = Field(None, description="ledger database URL (--db); default SQLite in the session folder")
    limit_edge: float = Field(0.05, ge=0.0, le=5.0, description="first limit: mid less this, per share")
    limit_step: float = Field(0.05, gt=0.0, le=5.0, description="walk toward the natural price by this")
    limit_max_steps: int = Field(4, ge=1, le=20, description="orders per decision before giving up")
    step_wait_s: float = Field(20.0, gt=0.0, le=600.0, description="seconds each limit rests before the next")
    poll_s: float = Field(1.0, gt=0.0, le=60.0, description="order status poll while the stream is down")
    timeout_s: float = Field(10.0, gt=0.0, le=120.0, description="HTTP timeout per request")
    requests_per_minute: float = Field(190.0, gt=0.0, le=200.0, description="client-side rate limit")
    max_orders_per_day: int = Field(40, ge=1, le=10_000, description="kill switch: REDUCING above this")
    max_broker_errors: int = Field(8, ge=1, le=1000, description="kill switch: HALTED after this many in a row")
    stale_quote_s: float = Field(120.0, gt=0.0, le=3600.0, description="kill switch: REDUCING without a fresh quote")
    kill_file: str | None = Field(None, description="halt when this file exists (default <session>/KILL)")
    flatten_on_halt: bool = Field(False, description="close positions when the kill switch halts")
    bar_delay_s: float = Field(3.0, ge=0.0, le=120.0, description="wait after a bar closes before fetching it")
    stream: bool = Field(True, description="use the trade-update stream (REST polling is the fallback)")
    stream_min_backoff_s: float = Field(1.0, gt=0.0, le=60.0, description="stream reconnect backoff, first")
    stream_max_backoff_s: float = Field(30.0, gt=0.0, le=600.0, description="stream reconnect backoff, cap")
    read_attempts: int = Field(4, ge=1, le=10, description="tries per data/status read")
    read_backoff_s: float = Field(0.5, gt=0.0, le=30.0, description="read retry backoff base (Retry-After wins)")


class PipelineConfig(_Frozen):
    """``scripts/run_production_pipeline.py`` / ``--mode data pipeline``: download -> validate -> merge ->
    expand -> describe (``data_factory.pipeline``)."""

    symbols: tuple[str, ...] = Field(("SPY",), min_length=1, description="underlyings to download")
    start: dt.date | None = Field(None, description="first day; required to run the pipeline")
    end: dt.date | None = Field(None, description="last day; required to run the pipeline")
    timeframe: Literal["1Min", "5Min", "15Min"] = Field("5Min", description="intraday bar size downloaded")
    expand_minutes: Literal[1, 5] = Field(5, description="bar size of the expanded option quotes")
    out: str = Field("data/pipeline", description="pipeline folder (download layout + merged + expanded)")
    data_url: str | None = Field(None, description="Alpaca data endpoint override (tests)")
    dte_max: int = Field(60, ge=0, le=400, description="expiries kept, days")


class AppConfig(_Frozen):
    run: RunConfig = Field(default_factory=RunConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    backtest: BacktestConfig = Field(default_factory=BacktestConfig)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    exits: ExitConfig = Field(default_factory=ExitConfig)
    filters: FilterConfig = Field(default_factory=FilterConfig)
    mtf: MTFConfig = Field(default_factory=MTFConfig)
    indicators: IndicatorConfig = Field(default_factory=IndicatorConfig)
    fuzzy: FuzzyConfig = Field(default_factory=FuzzyConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    hedge: HedgeConfig = Field(default_factory=HedgeConfig)
    gates: GatesConfig = Field(default_factory=GatesConfig)
    forecaster: ForecasterConfig = Field(default_factory=ForecasterConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    live: LiveConfig = Field(default_factory=LiveConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)

    def to_json_dict(self) -> dict[str, Any]:
        return json.loads(self.model_dump_json())

    def with_overrides(self, overrides: dict[str, Any]) -> AppConfig:
        """A new validated config with dotted-path overrides (``{"exits.profit_pct": 0.6}``)."""
        return build_config(self.to_json_dict(), overrides, source="override")


# ---------------------------------------------------------------------------------------
# loading and error formatting

MAX_CONFIG_BYTES = 1_000_000


def read_config_file(path: str) -> dict[str, Any]:
    """Read a TOML or YAML config file into a nested dict (ConfigError on any problem)."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"--config {path}: is a folder; pass a .toml or .yaml file")
    if not p.is_file():
        raise ConfigError(f"--config {path}: file not found; pass an existing .toml or .yaml file")
    suffix = p.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise ConfigError(f"--config {path}: unknown extension {p.suffix!r}; use .toml, .yaml or .yml")
    try:
        with p.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot read it ({exc.strerror or exc}); check its permissions") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"--config {path}: larger than {MAX_CONFIG_BYTES // 1000} kB, not a config file; "
                          "write one with `python config.template.py > my.toml`")
    try:
        if b"\x00" in raw:
            raise UnicodeDecodeError("utf-8", raw, raw.index(b"\x00"), raw.index(b"\x00") + 1, "NUL byte")
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--config {path}: binary content at byte {exc.start}, not a text TOML/YAML file; "
                          "write one with `python config.template.py > my.toml`") from None
    data = _parse_config_text(text, path, suffix)
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: top level must be a table of sections such as [strategy]")
    return data


def _parse_config_text(text: str, path: str, suffix: str) -> Any:
    try:
        if suffix == ".toml":
            return tomllib.loads(text)
        import yaml

        return yaml.safe_load(text) or {}
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise ConfigError(f"--config {path}: not valid {suffix[1:].upper()}: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # yaml.YAMLError and friends: one line for the user
        detail = " ".join(str(exc).split())
        raise ConfigError(f"--config {path}: not valid YAML: {detail}") from None


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, val in extra.items():
        if isinstance(val, dict) and isinstance(out.get(key), dict) and key != "weights":
            out[key] = _deep_merge(out[key], val)
        else:
            out[key] = val
    return out


def _field_bounds(section: str, name: str) -> str:
    model = AppConfig.model_fields.get(section)
    if model is None or name not in model.annotation.model_fields:  # type: ignore[union-attr]
        return ""
    info = model.annotation.model_fields[name]  # type: ignore[union-attr]
    bounds = []
    for meta in info.metadata:
        for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if getattr(meta, attr, None) is not None:
                bounds.append(f"{sym} {getattr(meta, attr):g}")
    return f" (allowed: {', '.join(bounds)})" if bounds else ""


@dataclass(frozen=True, slots=True)
class _Origin:
    """Where the values being validated came from, to blame the right place in an error."""

    names: dict[str, str]  # dotted path -> command-line flag
    cli_keys: frozenset[str]  # dotted paths the command line (or an override) set
    file_path: str | None
    file_values: dict[str, Any]

    def in_file(self, dotted: str) -> bool:
        node: Any = self.file_values
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return self.file_path is not None

    def place(self, dotted: str) -> str:
        """``--bt-cash`` when typed, ``config file F, key [backtest] cash`` when read from F."""
        section, _, name = dotted.partition(".")
        if dotted not in self.cli_keys and self.in_file(dotted):
            return f"config file {self.file_path}, key [{section}] {name}"
        if dotted in self.cli_keys and dotted in self.names:
            return self.names[dotted]
        return f"config key '{dotted}'"


def _known_keys(section: str) -> list[str]:
    model = AppConfig.model_fields.get(section)
    if model is None:
        return list(AppConfig.model_fields)
    return list(model.annotation.model_fields)  # type: ignore[union-attr]


def _unknown_key(loc: tuple[Any, ...], origin: _Origin) -> str:
    dotted = ".".join(str(p) for p in loc)
    keys = _known_keys(str(loc[0])) if len(loc) >= 2 else list(AppConfig.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), keys, n=1, cutoff=0.6)
    hint = f"did you mean '{'.'.join([*map(str, loc[:-1]), close[0]])}'? " if close else ""
    where = f" in {origin.file_path}" if origin.in_file(dotted) else ""
    return f"unknown config key '{dotted}'{where}; {hint}`python config.template.py` lists every key"


def _section_error(section: str, msg: str, value: Any, origin: _Origin) -> str:
    """A cross-field (section-level) error: flags of values the user did not type become key names."""
    if not isinstance(value, dict) and section in AppConfig.model_fields:
        where = f"config file {origin.file_path}: " if origin.in_file(section) else ""
        return f"{where}[{section}] must be a table of keys, got {value!r}"
    from_file = False
    for dotted, flag in origin.names.items():
        if not dotted.startswith(f"{section}.") or dotted in origin.cli_keys:
            continue
        key = dotted.partition(".")[2]
        if re.search(rf"{re.escape(flag)}\b", msg):
            msg = re.sub(rf"{re.escape(flag)}\b", key, msg)
            from_file = from_file or origin.in_file(dotted)
    from_file = from_file or any(origin.in_file(f"{section}.{k}") and re.search(rf"\b{k}\b", msg)
                                 for k in _known_keys(section))
    return f"config file {origin.file_path} [{section}]: {msg}" if from_file else msg


def _format_error(err: ValidationError, origin: _Origin) -> str:
    first = err.errors()[0]
    loc = tuple(first["loc"])
    msg = str(first["msg"]).removeprefix("Value error, ")
    value = first.get("input")
    if first["type"] == "extra_forbidden":
        return _unknown_key(loc, origin)
    if len(loc) >= 2:
        section, name = str(loc[0]), str(loc[1])
        place = origin.place(f"{section}.{name}")
        if isinstance(value, dict):
            return f"{place}: {msg}"
        shown = f" = {value!r}" if place.startswith("config file") else f" {value!r}"
        return f"{place}{shown}: {msg}{_field_bounds(section, name)}"
    if len(loc) == 1:
        return _section_error(str(loc[0]), msg, value, origin)
    return msg


def build_config(
    file_values: dict[str, Any] | None = None,
    cli_values: dict[str, Any] | None = None,
    option_names: dict[str, str] | None = None,
    source: str = "defaults",
    file_path: str | None = None,
) -> AppConfig:
    """Merge defaults < file < command line and validate once (ConfigError on failure).

    An error names the place the bad value came from: the flag when ``cli_values`` set it,
    ``config file <file_path>, key [section] name`` when the file did, else the config key."""
    tree: dict[str, Any] = {}
    if file_values:
        tree = _deep_merge(tree, file_values)
    for dotted, value in (cli_values or {}).items():
        _set_dotted(tree, dotted, value)
    try:
        return AppConfig.model_validate(tree)
    except ValidationError as exc:
        origin = _Origin(option_names or {}, frozenset(cli_values or {}), file_path, file_values or {})
        raise ConfigError(_format_error(exc, origin)) from exc
