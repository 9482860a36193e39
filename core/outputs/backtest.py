"""Run outputs of a backtest (SPEC §8): files written atomically into reports/<run-id>/.

Everything is first written into a hidden temporary folder beside the target and renamed
into place at the end, so an interrupted run leaves nothing half-written.

Time convention of every output file: ISO 8601 in UTC with an explicit ``+00:00`` offset
(``2018-02-01T15:00:00+00:00`` is 10:00 in New York); dates (``expiry``) are New York session
dates.  Human-facing outputs (console, report.pdf, equity.png) show New York time and say so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analytics.attribution import factor_attribution
from analytics.metrics import compute_metrics, daily_closes
from core.backtest.market import vix_note
from core.backtest.run import BacktestResult
from core.broker.protocol import ClosedTrade
from core.dto import ExitReason, Position, Side
from core.outputs.atomic import atomic_dir, fresh_default
from risk.greeks import beta_weighted_delta

REPO_ROOT = Path(__file__).resolve().parents[2]
UTC_FORMAT = "%Y-%m-%dT%H:%M:%S+00:00"
CATEGORICAL_FACTORS = ("entry_regime_code",)  # codes, not magnitudes: shown per category, never averaged


def utc_text(ts: dt.datetime | pd.Timestamp) -> str:
    """One timestamp in the output-file convention (ISO 8601, UTC, ``+00:00``)."""
    return pd.Timestamp(ts).tz_convert("UTC").strftime(UTC_FORMAT)


def utc_texts(index: pd.DatetimeIndex) -> list[str]:
    """A tz-aware index in the output-file convention, vectorised."""
    return list(pd.DatetimeIndex(index).tz_convert("UTC").strftime(UTC_FORMAT))


def code_revision() -> str:
    """``git describe`` of the checkout (``+dirty`` when it has changes), or 'unknown'."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def config_hash(cfg_json: dict[str, Any]) -> str:
    blob = json.dumps({k: v for k, v in cfg_json.items() if k != "run"}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def run_id(result: BacktestResult) -> str:
    cfg = result.cfg.to_json_dict()
    return f"bt_{result.inputs.start:%Y%m%d}_{result.inputs.end:%Y%m%d}_{config_hash(cfg)}_s{result.cfg.run.seed}"


def legs_summary(position: Position) -> str:
    """``+1P253 -1P258 -1C275 +1C280``: side, ratio per unit, right and strike of every leg, by strike."""
    legs = sorted(position.legs, key=lambda leg: (leg.contract.expiry, leg.contract.strike, leg.contract.right.value))
    return " ".join(f"{'+' if leg.side is Side.LONG else '-'}{leg.qty // position.qty}"
                    f"{leg.contract.right.value}{leg.contract.strike:g}" for leg in legs)


def trades_frame(trades: list[ClosedTrade]) -> pd.DataFrame:
    """One row per position, any structure, in order of entry (see README "trades.csv")."""
    rows = []
    for t in sorted(trades, key=lambda t: (t.position.opened_at, t.position.position_id)):
        pos = t.position
        row: dict[str, Any] = {"position_id": pos.position_id, "structure": pos.structure.value,
                               "legs": legs_summary(pos), "entry_time": utc_text(pos.opened_at),
                               "exit_time": utc_text(t.exit_time), "expiry": pos.front_expiry.isoformat(),
                               "contracts": pos.qty, "credit": pos.credit, "max_loss": pos.max_loss,
                               "exit_debit": t.exit_debit, "fees": t.fees, "option_pnl": t.pnl,
                               "share_pnl": t.share_pnl, "pnl": t.total_pnl, "exit_reason": t.exit_reason.value}
        feats: dict[str, Any] = dict(t.entry_extra.get("features", {}))  # type: ignore[call-overload]  # stored as object
        for key in ENTRY_FEATURE_COLUMNS:
            if key in feats:
                row[f"entry_{key}"] = feats[key]
        scores: dict[str, Any] = dict(t.entry_extra.get("scores", {}))  # type: ignore[call-overload]  # stored as object
        for key in ("entry_score", "credit_ratio", "breach_prob", "g"):
            if key in scores:
                row[f"entry_{key}"] = scores[key]
        row["rolled_from"] = str(scores.get("rolled_from") or "")  # the position a roll replaced
        rows.append(row)
    return pd.DataFrame(rows)


def legs_frame(trades: list[ClosedTrade]) -> pd.DataFrame:
    """One row per leg fill (opening and closing) of every position (``legs.csv``)."""
    rows = []
    for t in trades:
        pos = t.position
        for leg, exit_px in zip(pos.legs, t.exit_prices, strict=True):
            for when, ts, px, buying in (("open", pos.opened_at, leg.entry_price, leg.side is Side.LONG),
                                         ("close", t.exit_time, exit_px, leg.side is Side.SHORT)):
                rows.append({"position_id": pos.position_id, "fill": when, "leg_role": leg.role.value,
                             "occ_symbol": leg.contract.occ_symbol, "side": "buy" if buying else "sell",
                             "quantity": leg.qty, "price": px, "time": utc_text(ts),
                             "settlement": when == "close" and t.exit_reason is ExitReason.EXPIRY})
    return pd.DataFrame(rows, columns=["position_id", "fill", "leg_role", "occ_symbol", "side", "quantity", "price",
                                       "time", "settlement"])


ENTRY_FEATURE_COLUMNS = (
    "vix", "iv_rank", "regime_code", "mtf_consensus", "fuzzy_confidence", "sigma_star",
    "mu_mtf", "mu_iv_rank", "mu_vix", "mu_rsi", "mu_adx", "mu_bollinger", "mu_stochastic", "mu_psar", "mu_volume",
    "mu_sma_distance", "rsi", "adx", "bb_position", "bb_width", "stoch_k", "psar_p", "volume_ratio",
    "sma_distance", "neural_prob_neutral", "neural_confidence",
)


def equity_frame(result: BacktestResult) -> pd.DataFrame:
    """Per bar: cash, positions at mark, equity, open positions and the buy-and-hold equity beside them."""
    rec, first = result.driver.rec, result.inputs.first_bar
    idx = result.traded_index
    return pd.DataFrame({"timestamp": utc_texts(idx), "cash": rec.cash[first:],
                         "positions_at_mark": rec.positions_value[first:], "equity": rec.equity[first:],
                         "open_positions": rec.open_positions[first:],
                         "buy_hold_equity": buy_and_hold_equity(result).to_numpy(float)})


def greeks_frame(result: BacktestResult) -> pd.DataFrame:
    rec, first = result.driver.rec, result.inputs.first_bar
    g = rec.greeks[first:]
    close = result.inputs.bars["close"].to_numpy(float)[first:]
    # the underlying is SPY-like in every shipped source: its own close is the SPY price
    bw = beta_weighted_delta(g[:, 0], close, result.cfg.risk.beta_to_spy, close)
    return pd.DataFrame({"timestamp": utc_texts(result.traded_index), "delta": g[:, 0],
                         "gamma": g[:, 1], "vega": g[:, 2], "theta": g[:, 3], "beta_weighted_delta": bw})


def metrics_of(result: BacktestResult, trades: pd.DataFrame) -> dict[str, Any]:
    eq = pd.Series(result.driver.rec.equity[result.inputs.first_bar:], index=result.traded_index)
    exposure = result.driver.rec.open_positions[result.inputs.first_bar:]
    return compute_metrics(eq, trades, exposure, result.cfg.backtest.cash)


def risk_metrics(result: BacktestResult, trades: pd.DataFrame) -> dict[str, Any]:
    """VaR / CVaR of daily P&L (historical and bootstrap Monte Carlo) and a Monte Carlo
    distribution of final equity from resampled trades (risk.var)."""
    from risk.var import monte_carlo_final_equity, monte_carlo_var, var_table

    eq = pd.Series(result.driver.rec.equity[result.inputs.first_bar:], index=result.traded_index)
    closes = daily_closes(eq)
    pnl = np.diff(np.r_[result.cfg.backtest.cash, closes.to_numpy(float)])
    seed = result.cfg.run.seed
    out: dict[str, Any] = {}
    if len(pnl) >= 2:
        out.update({f"hist_{k}": v for k, v in var_table(pnl).items()})
        out.update({f"mc_{k}": v for k, v in monte_carlo_var(pnl, n_paths=10_000, seed=seed).items()})
    if len(trades):
        mc = monte_carlo_final_equity(trades["pnl"].to_numpy(float), result.cfg.backtest.cash, n_paths=10_000,
                                      seed=seed)
        out.update({f"mc_final_equity_{k}": v for k, v in mc.items()})
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}


def buy_and_hold_equity(result: BacktestResult) -> pd.Series:
    """Naive baseline: the starting cash in whole shares of the underlying at the first bar's
    close, the rest in cash, marked at every bar: ``E_t = cash - n P_0 + n P_t``, ``n = floor(cash / P_0)``."""
    close = result.inputs.bars["close"].to_numpy(float)[result.inputs.first_bar:]
    cash = result.cfg.backtest.cash
    shares = math.floor(cash / close[0])
    return pd.Series(cash - shares * close[0] + shares * close, index=result.traded_index)


def buy_and_hold_metrics(result: BacktestResult) -> dict[str, Any]:
    """The metrics of ``buy_and_hold_equity`` (no trades)."""
    eq = buy_and_hold_equity(result)
    return compute_metrics(eq, pd.DataFrame({"pnl": [], "entry_time": [], "exit_time": []}),
                           np.ones(len(eq)), result.cfg.backtest.cash)


def run_record(result: BacktestResult, out_dir: Path) -> dict[str, Any]:
    cfg_json = result.cfg.to_json_dict()
    info = result.inputs.info
    return {
        "run_id": out_dir.name,
        "config": cfg_json,
        "config_hash": config_hash(cfg_json),
        "data": {**info.as_dict(), "range": [result.inputs.start.isoformat(), result.inputs.end.isoformat()],
                 "bars": int(len(result.traded_index)), "bar_minutes": result.cfg.backtest.bar_minutes,
                 "vix_proxy_in_range": bool(info.vix_proxy_until and result.inputs.start <= info.vix_proxy_until),
                 "intraday_synthetic": info.intraday_synthetic},
        "seed": result.cfg.run.seed,
        "code_revision": code_revision(),
    }


def _dump_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=False, default=_json_default) + "\n", encoding="utf-8")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def write_outputs(result: BacktestResult, out: str | None = None) -> Path:
    """Write every output file; returns the run folder."""
    given = out or result.cfg.run.out
    target = Path(given) if given else fresh_default(REPO_ROOT / "reports" / run_id(result))
    with atomic_dir(target, force=result.cfg.run.force) as tmp:
        _write_all(result, tmp, target.name)
    return target


def _write_all(result: BacktestResult, folder: Path, name: str) -> None:
    trades = trades_frame(result.driver.broker.closed)
    trades.to_csv(folder / "trades.csv", index=False, float_format="%.6f")
    legs_frame(result.driver.broker.closed).to_csv(folder / "legs.csv", index=False, float_format="%.6f")
    equity = equity_frame(result)
    equity.to_csv(folder / "equity.csv", index=False, float_format="%.4f")
    greeks_frame(result).to_csv(folder / "greeks.csv", index=False, float_format="%.6f")
    records = [dataclasses.replace(r, ts=r.ts.astimezone(dt.UTC)) for r in result.driver.recorder.records]
    (folder / "decisions.log").write_text("\n".join(r.render() for r in records) + "\n", encoding="utf-8")
    with (folder / "decisions.jsonl").open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r.to_json(), default=_json_default) + "\n")
    metrics = metrics_of(result, trades)
    option_pnl = float(trades["pnl"].sum()) if len(trades) else 0.0
    # delta hedges (and deliveries still open at the end): the part of the equity change not in trades.csv
    metrics["stock_pnl"] = round(float(metrics["net_profit"] or 0.0) - option_pnl, 6) + 0.0
    metrics.update(risk_metrics(result, trades))
    _dump_json(folder / "metrics.json", metrics)
    numeric = trades.drop(columns=[c for c in CATEGORICAL_FACTORS if c in trades])
    factor_attribution(numeric, seed=result.cfg.run.seed).to_csv(folder / "factor_attribution.csv", index=False,
                                                                 float_format="%.6f")
    baseline = {"baseline": "buy_and_hold_underlying", **buy_and_hold_metrics(result)}
    _dump_json(folder / "baseline_metrics.json", baseline)
    record = run_record(result, folder.parent / name)
    _dump_json(folder / "run.json", record)
    if not result.cfg.run.no_plot:
        from core.outputs.charts import equity_chart
        from core.outputs.pdf import build_report

        g = result.cfg.gates
        events = None
        if g.event_blackout_sessions is not None or g.event_close_sessions is not None:
            from data_factory.events import event_frame

            events = event_frame(result.inputs.start, result.inputs.end, g.event_kinds)
        equity_chart(equity, folder / "equity.png", title=chart_title(result, metrics, baseline), events=events)
        build_report(folder)


def chart_title(result: BacktestResult, metrics: dict[str, Any], baseline: dict[str, Any]) -> str:
    """``Iron condor on SPY, 2018-02-01 to 2018-03-30: -$238 (-0.95%); buy and hold -$1,567 (-6.27%)``."""
    from core.outputs.report_data import format_usd

    def result_text(m: dict[str, Any]) -> str:
        net, ret = m.get("net_profit"), m.get("total_return")
        return "n/a" if net is None or ret is None else f"{format_usd(net)} ({ret * 100:+.2f}%)"

    structure = result.cfg.strategy.structure.value.replace("_", " ").capitalize()
    return (f"{structure} on {result.cfg.strategy.underlying}, {result.inputs.start} to {result.inputs.end}: "
            f"{result_text(metrics)}\nbuy and hold of the underlying: {result_text(baseline)}")


SUMMARY_ROWS = (  # (label, metrics key, kind, shown for buy and hold)
    ("Net P&L", "net_profit", "usd", True), ("Return", "total_return", "pct", True),
    ("CAGR", "cagr", "pct", True), ("Max drawdown", "max_drawdown_pct", "pct", True),
    ("Max drawdown $", "max_drawdown", "usd", True), ("Sharpe", "sharpe", "ratio", True),
    ("Trades", "trades", "count", False), ("Win rate", "win_rate", "pct", False),
    ("Average credit", "avg_credit", "credit", False), ("Average hold", "avg_hold_days", "days", False),
    ("Profit factor", "profit_factor", "ratio", False),
)


def summary_figures(out_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The strategy's and buy-and-hold's figures of the end-of-run table, read from the run folder."""
    metrics = json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))
    path = out_dir / "baseline_metrics.json"
    baseline = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    try:
        trades = pd.read_csv(out_dir / "trades.csv")
    except pd.errors.EmptyDataError:
        trades = pd.DataFrame()
    if len(trades):
        held = pd.to_datetime(trades["exit_time"], utc=True) - pd.to_datetime(trades["entry_time"], utc=True)
        metrics["avg_credit"] = float(trades["credit"].mean())
        metrics["avg_hold_days"] = float(held.dt.total_seconds().mean() / 86400.0)
    return metrics, baseline


def summary_cell(kind: str, value: Any) -> str:
    """Trader's text of one figure: ``-$238``, ``-0.95%``, ``1.23``, ``$1.01/sh``, ``6.2 d``; ``-`` if absent."""
    from core.outputs.report_data import format_usd

    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    value = float(value) + 0.0
    texts = {"usd": lambda v: format_usd(v).removesuffix(".00") if abs(v) >= 1000 else format_usd(v),
             "pct": lambda v: f"{round(v * 100, 2) + 0.0:.2f}%", "ratio": lambda v: f"{round(v, 2) + 0.0:.2f}",
             "count": lambda v: f"{v:,.0f}", "credit": lambda v: f"${v:.2f}/sh", "days": lambda v: f"{v:.1f} d"}
    return texts[kind](value)


def print_summary(result: BacktestResult, out_dir: Path) -> None:
    """The end-of-run table (strategy beside buy and hold), data flags, why there were no
    trades when there were none, then the path of report.pdf (everything else: metrics.json)."""
    from rich.console import Console
    from rich.table import Table

    metrics, baseline = summary_figures(out_dir)
    info = result.inputs.info
    structure = result.cfg.strategy.structure.value.replace("_", " ")
    heading = (f"Backtest {result.inputs.start} to {result.inputs.end}: {structure} on "
               f"{result.cfg.strategy.underlying}, {info.name} data")
    table = Table()
    for col, justify in (("", "left"), ("strategy", "right"), ("buy & hold", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]  # rich's literal type
    for label, key, kind, both in SUMMARY_ROWS:
        table.add_row(label, summary_cell(kind, metrics.get(key)),
                      summary_cell(kind, baseline.get(key)) if both else "")
    console = Console()
    console.print(heading, highlight=False)
    console.print(table)
    for flag in data_flags(result):
        console.print(f"note: {flag}", highlight=False)
    if not metrics.get("trades"):
        console.print(no_trade_reason([r.to_json() for r in result.driver.recorder.records], result.cfg),
                      highlight=False)
    pdf = out_dir / "report.pdf"
    where = f"report: {pdf}" if pdf.is_file() else f"outputs: {out_dir}"
    console.print(f"{where}  (all metrics in metrics.json; {result.seconds:.1f} s)", highlight=False,
                  soft_wrap=True)  # a path is never broken over lines


def data_flags(result: BacktestResult) -> list[str]:
    info = result.inputs.info
    flags = []
    if info.intraday_synthetic:
        flags.append("intraday bars are synthesised from real daily OHLCV")
    if info.vix_proxy_until and result.inputs.start <= info.vix_proxy_until:
        flags.append(vix_note(info))
    if info.chains_modelled:
        flags.append("option chains are modelled, not observed quotes")
    return flags


def no_trade_reason(decisions: list[dict[str, Any]], cfg: Any, top: int = 3) -> str:
    """One line on why a run opened nothing: the most common skip reasons with their counts
    (from the decision rows), or that no entry was ever evaluated."""
    skips = [d for d in decisions if str(d.get("action", "")).lower() == "skip"]
    if not skips:
        when = "every bar" if cfg.backtest.entry_every_bar else f"--entry-time {cfg.backtest.entry_time}"
        return (f"No trades: no entry was evaluated ({when}); check that the range has sessions "
                "with bars at that time")
    counts: Counter[str] = Counter()
    example: dict[str, str] = {}
    for d in skips:
        code = (d.get("codes") or ["unknown"])[0]
        counts[code] += 1
        example.setdefault(code, " ".join(str(d.get("text", "")).split()))
    reasons = "; ".join(f"{code} x{n} (e.g. {example[code]})" for code, n in counts.most_common(top))
    return f"No trades: the entry was skipped {len(skips)} times. Top reasons: {reasons}"


def fmt_value(value: Any, missing: str = "n/a") -> str:
    """Console text of a metric: 4 decimals below 100, 2 above, thousands separators."""
    if value is None:
        return missing
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 100 else f"{value:,.2f}"
    return str(value)
