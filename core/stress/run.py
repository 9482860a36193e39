"""Stress mode (SPEC §6): scenario revaluation, historical replay and parameter sensitivity.

1. **Scenarios** — the portfolio is either the positions a backtest of the configured
   strategy holds at the close of ``as_of`` (the run goes from the configured start to
   ``as_of``; the positions are the ones ``driver.finish()`` closes as ``end_of_data``,
   i.e. exactly what was open at the last bar), or, with no date or nothing open, a
   standard 16-delta iron condor (``build_condor``, the cfg's 30-45 DTE window, wings
   ``wing_min``) at the close of the last session of the configured range.  Each
   ``risk.scenarios`` scenario is priced in full (BSM, leg IVs from the chain) beside the
   delta-gamma-vega approximation.  Beside the P&L stands the defined-risk bound

       max_loss_bound = sum_positions (widest wing - credit) x 100 x contracts
       pnl_from_entry = V_scenario - V_entry,   V_entry = -sum credit x 100 x contracts

   and ``pnl_from_entry >= -max_loss_bound`` always holds (a condor is worth at most its
   widest wing).
2. **Historical replay** — the strategy over the stress windows of the embedded data, one
   backtest each, metrics side by side with the window's VIX range and data flags.
3. **Sensitivity** — each key parameter one grid step down and up around the config on the
   configured range; market inputs and features are loaded once and shared by every run.

Outputs: ``stress_report.csv`` (long table: section, name, metric, value) and
``stress_report.json``, written into a temporary folder and renamed into place.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.backtest.market import build_market, resolve_range, vix_note
from core.backtest.run import BacktestResult, build_features, load_inputs, run_backtest
from core.config import AppConfig
from core.dto import (
    CONTRACT_MULTIPLIER,
    ConfigError,
    DataError,
    ExitReason,
    OptionRight,
    Position,
)
from core.outputs.atomic import check_target, fresh_default
from core.outputs.backtest import (
    REPO_ROOT,
    code_revision,
    config_hash,
    metrics_of,
    no_trade_reason,
    trades_frame,
    utc_text,
)
from core.stress.params import SENSITIVITY_PARAMS, ParamStep, field_limits
from core.stress.report import _clean, print_report, write_report
from data_factory.base import ChainSource, MarketSource
from risk.scenarios import IV_FLOOR, STANDARD_SCENARIOS, OptionBook, revalue
from strategies.structures.catalog import IRON_CONDOR
from strategies.structures.spec import Candidate, SelectionParams, select

HISTORICAL_WINDOWS: dict[str, tuple[str, str]] = {
    "Aug 2015": ("2015-08-03", "2015-09-30"),
    "Feb 2018": ("2018-01-22", "2018-03-29"),
    "Q4 2018": ("2018-10-01", "2018-12-31"),
    "Sep-Nov 2008": ("2008-09-01", "2008-11-28"),
}
STANDARD_TARGET_DELTA = 0.16
SUMMARY_KEYS = ("net_profit", "max_drawdown", "max_drawdown_pct", "trades", "win_rate")
AS_OF_LOOKBACK_DAYS = 91  # warm run length when --as-of precedes the default range and no --bt-start is given


@dataclass(frozen=True, slots=True)
class StressPortfolio:
    """Positions to revalue with the market they are priced in (``ts`` is the bar of the marks)."""

    kind: str  # open_positions | standard_condor
    as_of: dt.date
    ts: pd.Timestamp
    book: OptionBook
    positions: tuple[Position, ...]

    @property
    def entry_value(self) -> float:
        return -sum(p.credit * CONTRACT_MULTIPLIER * p.qty for p in self.positions)

    @property
    def max_loss_bound(self) -> float:
        return sum(p.max_loss * CONTRACT_MULTIPLIER * p.qty for p in self.positions)

    def describe(self) -> dict[str, Any]:
        rows = []
        for p in self.positions:
            strikes = {leg.role.value: leg.contract.strike for leg in p.legs}
            put_w = strikes.get("short_put", math.nan) - strikes.get("long_put", math.nan)
            call_w = strikes.get("long_call", math.nan) - strikes.get("short_call", math.nan)
            rows.append({"position_id": p.position_id, "structure": p.structure.value,
                         "opened_at": utc_text(p.opened_at), "expiry": p.front_expiry.isoformat(),
                         "contracts": p.qty, **strikes,
                         "put_width": put_w, "call_width": call_w, "credit": p.credit,
                         "max_loss_per_share": p.max_loss,
                         "max_loss_bound": p.max_loss * CONTRACT_MULTIPLIER * p.qty})
        return {"kind": self.kind, "as_of": self.as_of.isoformat(), "timestamp": utc_text(self.ts),
                "spot": self.book.spot, "atm_iv": self.book.atm_iv, "rate": self.book.r, "dividend_yield": self.book.q,
                "entry_value": self.entry_value, "max_loss_bound": self.max_loss_bound, "positions": rows}


# ------------------------------------------------------------------------------ portfolio
def _parse_day(text: str, flag: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(text))
    except ValueError as exc:
        raise ConfigError(f"{flag} {text!r}: not a date; use YYYY-MM-DD") from exc


def portfolio_from_positions(kind: str, positions: Sequence[Position], chains: ChainSource, ts: pd.Timestamp,
                             spot: float, r: float, q: float) -> StressPortfolio:
    """Book of ``positions`` with leg IVs (and the ATM IV of each leg's expiry) quoted by ``chains`` at ``ts``.

    ``atm_iv`` = contract-weighted mean of the chain's IV at strike = spot on the legs' expiries."""
    legs = [leg for p in positions for leg in p.legs]
    expiries = np.array([leg.contract.expiry for leg in legs], dtype="datetime64[D]")
    is_call = np.array([leg.contract.right is OptionRight.CALL for leg in legs])
    leg_iv = chains.marks(ts, expiries, np.array([leg.contract.strike for leg in legs], float), is_call).iv
    atm = chains.marks(ts, expiries, np.full(len(legs), spot), np.ones(len(legs), bool)).iv
    weights = np.array([leg.qty for leg in legs], float)
    atm_iv = max(float(np.dot(weights, atm) / weights.sum()), IV_FLOOR)
    day = pd.Timestamp(ts).tz_convert("America/New_York").date()
    book = OptionBook.from_legs(legs, spot, np.maximum(leg_iv, IV_FLOOR), day, r=r, q=q, atm_iv=atm_iv)
    return StressPortfolio(kind, day, pd.Timestamp(ts), book, tuple(positions))


def _rates(cfg: AppConfig, chains: ChainSource) -> tuple[float, float]:
    params = getattr(chains, "params", None)
    if params is not None:
        return float(params.rate), float(params.dividend_yield)
    return cfg.data.rate, cfg.data.dividend_yield


class StepLog:
    """One labelled line per stress step on stderr (``window 2/4: Feb 2018``), with the seconds
    since the start; silent when hidden (``--no-progress``).  Replaces per-run progress bars."""

    def __init__(self, show: bool, stream: Any = None) -> None:
        self.show, self.stream, self.t0 = show, stream, time.perf_counter()

    def __call__(self, label: str) -> None:
        if self.show:
            print(f"[{time.perf_counter() - self.t0:6.1f} s] {label}", file=self.stream or sys.stderr, flush=True)


QUIET = StepLog(False)


def open_positions_at(cfg: AppConfig, market: MarketSource, as_of: dt.date,
                      log: StepLog = QUIET) -> StressPortfolio | None:
    """Positions the configured backtest holds at the close of ``as_of`` (None when nothing is open).

    ``run_backtest`` ends with ``driver.finish()``, which closes every open position at the
    last bar's marks with reason ``end_of_data``; those trades carry the untouched ``Position``
    objects, so reading them back is exactly the book open at that close."""
    start = cfg.backtest.start
    if start is None:
        default_start, _ = resolve_range(cfg.with_overrides({"backtest.end": None}), market)
        start = default_start if default_start < as_of else as_of - dt.timedelta(days=AS_OF_LOOKBACK_DAYS)
    if start >= as_of:
        raise ConfigError(f"--as-of {as_of} must be after --bt-start {start}; pass an earlier --bt-start")
    run_cfg = cfg.with_overrides({"backtest.start": start.isoformat(), "backtest.end": as_of.isoformat()})
    log(f"portfolio: backtest {start} to {as_of} for the positions open at the close")
    result = run_backtest(run_cfg, market, progress=False)
    held = [t.position for t in result.driver.broker.closed if t.exit_reason is ExitReason.END_OF_DATA]
    if not held:
        return None
    bars, chains = result.inputs.bars, result.inputs.chains
    return portfolio_from_positions("open_positions", held, chains, pd.Timestamp(bars.index[-1]),
                                    float(bars["close"].iloc[-1]), *_rates(cfg, chains))


def standard_condor(cfg: AppConfig, market: MarketSource, day: dt.date) -> StressPortfolio:
    """The 16-delta condor (target clipped into the cfg delta band) at the close of ``day``:
    expiry in [dte_min, dte_max] preferring monthlies nearest the window's middle,
    wings the smallest listed width >= ``wing_min``; ``quantity`` contracts at mid."""
    from data_factory.listing import is_monthly

    s = cfg.strategy
    bars = market.intraday_bars(max(market.info.first_date, day - dt.timedelta(days=10)), day, cfg.backtest.bar_minutes)
    if bars.empty:
        raise DataError(f"no bars on or before {day} in the {market.info.name} data; pick a date inside the data")
    ts = pd.Timestamp(bars.index[-1])
    chains = market.chains(bars)
    session = ts.tz_convert("America/New_York").date()
    mid = 0.5 * (s.dte_min + s.dte_max)
    listed = [e for e in chains.expiries(ts) if s.dte_min <= (e - session).days <= s.dte_max]
    listed.sort(key=lambda e: (not is_monthly(e), abs((e - session).days - mid)))
    target = min(max(STANDARD_TARGET_DELTA, s.delta_low), s.delta_high)
    reasons = []
    for expiry in listed:
        params = SelectionParams(target, s.delta_low, s.delta_high, s.wing_min, s.wing_max)
        cand, why = select(IRON_CONDOR, chains.expiry_slice(ts, expiry), params, s.underlying, ts)
        if cand is not None:
            return portfolio_from_positions("standard_condor", [_condor_position(cand, s.underlying, s.quantity, ts)],
                                            chains, ts, float(bars["close"].iloc[-1]), *_rates(cfg, chains))
        reasons.append(why)
    raise DataError(f"no {s.dte_min}-{s.dte_max} DTE condor on {session}: {'; '.join(reasons) or 'no expiry listed'}"
                    "; widen --dte-min/--dte-max or the delta band")


def _condor_position(cand: Candidate, underlying: str, qty: int, ts: pd.Timestamp) -> Position:
    legs = tuple(replace(leg, qty=leg.qty * qty, entry_price=round(leg.entry_price, 4))
                 for leg in cand.order_legs(underlying))
    return Position("STD-CONDOR", cand.spec.kind, legs, qty, ts.to_pydatetime(), round(cand.credit_mid, 4),
                    round(cand.max_loss, 4))


def stress_portfolio(cfg: AppConfig, market: MarketSource, as_of: dt.date | None,
                     log: StepLog = QUIET) -> StressPortfolio:
    """Open positions at ``as_of``, else the standard condor (at ``as_of`` or the range's last session)."""
    info = market.info
    if as_of is not None and not info.first_date < as_of <= info.last_date:
        raise DataError(f"--as-of {as_of} is outside the {info.name} data ({info.first_date} to {info.last_date}); "
                        "pick a date inside that range")
    if as_of is not None:
        held = open_positions_at(cfg, market, as_of, log)
        if held is not None:
            return held
        log(f"portfolio: nothing open at the close of {as_of}; standard 16-delta condor instead")
        return standard_condor(cfg, market, as_of)
    _, end = resolve_range(cfg, market)
    log(f"portfolio: standard 16-delta condor at the close of {end}")
    return standard_condor(cfg, market, end)


def scenario_table(portfolio: StressPortfolio) -> pd.DataFrame:
    """``risk.scenarios.revalue`` rows plus the max-loss bound and the P&L measured from entry."""
    table = revalue(portfolio.book, STANDARD_SCENARIOS)
    table["max_loss_bound"] = portfolio.max_loss_bound
    table["pnl_from_entry"] = table["value_new"] - portfolio.entry_value
    table["within_bound"] = table["pnl_from_entry"] >= -portfolio.max_loss_bound - 1e-6
    return table


# ------------------------------------------------------------------------------ backtests
def run_summary(result: BacktestResult) -> dict[str, Any]:
    """The side-by-side metrics of one backtest, worst trade and the window's daily VIX range."""
    trades = trades_frame(result.driver.broker.closed)
    metrics = metrics_of(result, trades)
    inputs = result.inputs
    vix = inputs.vix.loc[pd.Timestamp(inputs.start):pd.Timestamp(inputs.end)]
    info = inputs.info
    return {
        "start": inputs.start.isoformat(), "end": inputs.end.isoformat(),
        **{k: metrics[k] for k in SUMMARY_KEYS},
        "worst_trade": float(trades["pnl"].min()) if len(trades) else None,
        "fitness": metrics["fitness"],
        "vix_min": float(vix["vix"].min()) if len(vix) else None,
        "vix_max": float(vix["vix"].max()) if len(vix) else None,
        "vix_proxy": bool((info.vix_proxy_until is not None and inputs.start <= info.vix_proxy_until)
                          or ("is_proxy" in vix and vix["is_proxy"].any())),
        "intraday_synthetic": bool(info.intraday_synthetic),
    }


def historical_replay(cfg: AppConfig, market: MarketSource, windows: Mapping[str, tuple[str, str]],
                      log: StepLog = QUIET) -> list[dict[str, Any]]:
    """One backtest per window (``backtest.start/end`` overridden); a window outside the data is skipped."""
    rows = []
    for k, (name, (start, end)) in enumerate(windows.items(), 1):
        log(f"window {k}/{len(windows)}: {name} ({start} to {end})")
        run_cfg = cfg.with_overrides({"backtest.start": start, "backtest.end": end, "run.no_plot": True,
                                      "run.progress": False})
        try:
            rows.append({"window": name, "status": "ok", **run_summary(run_backtest(run_cfg, market, False))})
        except DataError as exc:
            rows.append({"window": name, "status": f"skipped: {exc}", "start": start, "end": end})
    return rows


def _select_params(names: Sequence[str] | None) -> tuple[ParamStep, ...]:
    if names is None:
        return SENSITIVITY_PARAMS
    chosen = []
    for name in names:
        hits = [p for p in SENSITIVITY_PARAMS if name in (p.path, p.path.split(".")[-1])]
        if not hits:
            allowed = ", ".join(p.path.split(".")[-1] for p in SENSITIVITY_PARAMS)
            raise ConfigError(f"sensitivity parameter {name!r} is unknown; choose from {allowed}")
        chosen.extend(hits)
    return tuple(chosen)


def sensitivity_runs(cfg: AppConfig, market: MarketSource, params: Sequence[str] | None = None,
                     log: StepLog = QUIET) -> list[dict[str, Any]]:
    """Base run plus one run per parameter and direction, sharing inputs and features.

    A run without trades is marked ``status = "no trades: <top reasons>"`` with no
    ``net_profit_change``: standing aside is not an improvement, so it is never ranked or
    plotted as a gain."""
    chosen = _select_params(params)
    total, k = 1 + 2 * len(chosen), 1
    inputs = load_inputs(cfg, market)
    features = build_features(cfg, inputs)
    log(f"sensitivity 1/{total}: base run")
    base_result = run_backtest(cfg, progress=False, inputs=inputs, features=features)
    base = run_summary(base_result)
    rows = [{"parameter": "base", "direction": "base", "value": None, "base_value": None,
             "status": _run_status(base_result, base), **base}]
    for p in chosen:
        section, key = p.path.split(".")
        current = getattr(getattr(cfg, section), key)
        limits = field_limits(p.path)
        for direction, value in p.neighbours(current, limits).items():
            k += 1
            log(f"sensitivity {k}/{total}: {p.path} {direction} {current:g} -> {value:g}")
            row = {"parameter": p.path, "direction": direction, "value": value, "base_value": current}
            if value == current:
                rows.append({**row, "status": f"skipped: already at the allowed limit ({limits.text()})"})
                continue
            try:
                run_cfg = cfg.with_overrides({p.path: value})
            except ConfigError as exc:
                rows.append({**row, "status": f"skipped: {exc}"})
                continue
            result = run_backtest(run_cfg, progress=False, inputs=inputs, features=features)
            summary = run_summary(result)
            status = _run_status(result, summary)
            change = summary["net_profit"] - base["net_profit"] if status == "ok" and base["trades"] else None
            rows.append({**row, "status": status, **summary, "net_profit_change": change})
    return rows


def _run_status(result: BacktestResult, summary: Mapping[str, Any]) -> str:
    """``ok``, or ``no trades: ...`` with the most common skip reasons of the run."""
    if summary.get("trades"):
        return "ok"
    why = no_trade_reason([r.to_json() for r in result.driver.recorder.records], result.cfg, top=2)
    return "no trades: " + why.removeprefix("No trades: ")


# ------------------------------------------------------------------------------ outputs
def default_out_dir(cfg: AppConfig, day: dt.date) -> Path:
    """``reports/stress_<YYYYmmdd of the portfolio date>_<config hash>/``."""
    return REPO_ROOT / "reports" / f"stress_{day:%Y%m%d}_{config_hash(cfg.to_json_dict())}"


def _data_flags(market: MarketSource) -> dict[str, Any]:
    info = market.info
    return {"source": info.name, "intraday_synthetic": info.intraday_synthetic,
            "vix_proxy_until": info.vix_proxy_until.isoformat() if info.vix_proxy_until else None,
            "chains_modelled": info.chains_modelled, "vix_note": vix_note(market)}


def run_stress(cfg: AppConfig, as_of: str | None = None, out_dir: Path | None = None, progress: bool = False, *,
               windows: Mapping[str, tuple[str, str]] | None = None, sensitivity: bool = True,
               sensitivity_params: Sequence[str] | None = None) -> dict[str, Any]:
    """Run all three stress sections, write the report, return its payload (plus ``out_dir``).

    ``windows`` defaults to ``HISTORICAL_WINDOWS`` (an empty mapping skips the replay);
    ``sensitivity=False`` skips the sensitivity runs; ``sensitivity_params`` picks parameters."""
    _select_params(sensitivity_params)  # unknown names fail before any work
    given = out_dir or cfg.run.out
    if given:
        check_target(given, cfg.run.force)  # a folder we may not write is refused before the run, not after
    log = StepLog(progress)
    market = build_market(cfg)
    day = _parse_day(as_of, "--as-of") if as_of is not None else None
    portfolio = stress_portfolio(cfg, market, day, log)
    log("scenarios: full revaluation beside the delta-gamma-vega estimate")
    windows = HISTORICAL_WINDOWS if windows is None else windows
    sens = sensitivity_runs(cfg, market, sensitivity_params, log) if sensitivity else []
    cfg_json = cfg.to_json_dict()
    payload = _clean({
        "run": {"config_hash": config_hash(cfg_json), "seed": cfg.run.seed, "code_revision": code_revision(),
                "as_of": as_of, "data": market.info.as_dict(), "config": cfg_json},
        "portfolio": portfolio.describe(),
        "scenarios": scenario_table(portfolio).to_dict("records"),
        "historical": historical_replay(cfg, market, windows, log),
        "sensitivity": sens,
        "data_flags": _data_flags(market),
    })
    target = Path(given) if given else fresh_default(default_out_dir(cfg, portfolio.as_of))
    log(f"report: writing {target}")
    payload["out_dir"] = str(write_report(payload, target, force=cfg.run.force))
    return payload


# ------------------------------------------------------------------------------ console
def run_stress_cli(cfg: AppConfig, as_of: str | None) -> int:
    """``--mode stress [--as-of YYYY-MM-DD]``: run, write and print the stress report."""
    payload = run_stress(cfg, as_of, progress=cfg.run.progress)
    print_report(payload)
    return 0
