"""Run outputs of a backtest (SPEC §8): files written atomically into reports/<run-id>/.

Everything is first written into a hidden temporary folder beside the target and renamed
into place at the end, so an interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analytics.attribution import factor_attribution
from analytics.metrics import compute_metrics, daily_closes
from core.backtest.run import BacktestResult
from core.broker.protocol import ClosedTrade
from core.dto import ExitReason, Position, Side
from core.outputs.atomic import atomic_dir
from risk.greeks import beta_weighted_delta

REPO_ROOT = Path(__file__).resolve().parents[2]


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
    """One row per position, any structure (see README "trades.csv")."""
    rows = []
    for t in trades:
        pos = t.position
        row: dict[str, Any] = {"position_id": pos.position_id, "structure": pos.structure.value,
                               "legs": legs_summary(pos), "entry_time": pos.opened_at.isoformat(),
                               "exit_time": t.exit_time.isoformat(), "expiry": pos.front_expiry.isoformat(),
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
                             "quantity": leg.qty, "price": px, "time": ts.isoformat(),
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
    rec, first = result.driver.rec, result.inputs.first_bar
    idx = result.traded_index
    return pd.DataFrame({"timestamp": [t.isoformat() for t in idx], "cash": rec.cash[first:],
                         "positions_at_mark": rec.positions_value[first:], "equity": rec.equity[first:],
                         "open_positions": rec.open_positions[first:]})


def greeks_frame(result: BacktestResult) -> pd.DataFrame:
    rec, first = result.driver.rec, result.inputs.first_bar
    g = rec.greeks[first:]
    close = result.inputs.bars["close"].to_numpy(float)[first:]
    # the underlying is SPY-like in every shipped source: its own close is the SPY price
    bw = beta_weighted_delta(g[:, 0], close, result.cfg.risk.beta_to_spy, close)
    return pd.DataFrame({"timestamp": [t.isoformat() for t in result.traded_index], "delta": g[:, 0],
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


def buy_and_hold_metrics(result: BacktestResult) -> dict[str, Any]:
    """Naive baseline: the starting cash in the underlying over the same bars (whole shares)."""
    close = result.inputs.bars["close"].to_numpy(float)[result.inputs.first_bar:]
    cash = result.cfg.backtest.cash
    shares = math.floor(cash / close[0])
    eq = pd.Series(cash - shares * close[0] + shares * close, index=result.traded_index)
    return compute_metrics(eq, pd.DataFrame({"pnl": [], "entry_time": [], "exit_time": []}),
                           np.ones(len(eq)), cash)


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
    target = Path(out or result.cfg.run.out or REPO_ROOT / "reports" / run_id(result))
    with atomic_dir(target) as tmp:
        _write_all(result, tmp, target.name)
    return target


def _write_all(result: BacktestResult, folder: Path, name: str) -> None:
    trades = trades_frame(result.driver.broker.closed)
    trades.to_csv(folder / "trades.csv", index=False, float_format="%.6f")
    legs_frame(result.driver.broker.closed).to_csv(folder / "legs.csv", index=False, float_format="%.6f")
    equity_frame(result).to_csv(folder / "equity.csv", index=False, float_format="%.4f")
    greeks_frame(result).to_csv(folder / "greeks.csv", index=False, float_format="%.6f")
    records = result.driver.recorder.records
    (folder / "decisions.log").write_text("\n".join(r.render() for r in records) + "\n", encoding="utf-8")
    with (folder / "decisions.jsonl").open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r.to_json(), default=_json_default) + "\n")
    metrics = metrics_of(result, trades)
    option_pnl = float(trades["pnl"].sum()) if len(trades) else 0.0
    # delta hedges (and deliveries still open at the end): the part of the equity change not in trades.csv
    metrics["stock_pnl"] = round(float(metrics["net_profit"] or 0.0) - option_pnl, 6)
    metrics.update(risk_metrics(result, trades))
    _dump_json(folder / "metrics.json", metrics)
    factor_attribution(trades, seed=result.cfg.run.seed).to_csv(folder / "factor_attribution.csv", index=False,
                                                                float_format="%.6f")
    _dump_json(folder / "baseline_metrics.json", {"baseline": "buy_and_hold_underlying",
                                                  **buy_and_hold_metrics(result)})
    record = run_record(result, folder.parent / name)
    _dump_json(folder / "run.json", record)
    if not result.cfg.run.no_plot:
        from core.outputs.charts import equity_chart
        from core.outputs.pdf import build_report

        equity_chart(equity_frame(result), folder / "equity.png", title=name)
        build_report(folder)


def print_summary(result: BacktestResult, out_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    metrics = json.loads((out_dir / "metrics.json").read_text())
    info = result.inputs.info
    table = Table(title=f"Backtest {result.inputs.start} to {result.inputs.end} ({info.name} data)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, fmt_value(value))
    console = Console()
    console.print(table)
    flags = []
    if info.intraday_synthetic:
        flags.append("intraday bars are synthesised from real daily OHLCV")
    if info.vix_proxy_until and result.inputs.start <= info.vix_proxy_until:
        flags.append(f"VIX is a GARCH proxy up to {info.vix_proxy_until}")
    if info.chains_modelled:
        flags.append("option chains are modelled, not observed quotes")
    for flag in flags:
        console.print(f"[yellow]note:[/yellow] {flag}")
    attribution = pd.read_csv(out_dir / "factor_attribution.csv")
    mus = attribution[(attribution["factor"].str.startswith("mu_") | (attribution["factor"] == "fuzzy_confidence"))
                      & np.isfinite(attribution["delta_f"].astype(float))]
    if not mus.empty:
        top = mus.reindex(mus["delta_f"].abs().sort_values(ascending=False).index).head(3)
        text = ", ".join(f"{r.factor} ΔF {r.delta_f:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]"
                         for r in top.itertuples())
        console.print(f"factor attribution (win − lose at entry, 95% CI): {text}")
    console.print(f"outputs: {out_dir}  ({result.seconds:.1f} s)")


def fmt_value(value: Any, missing: str = "n/a") -> str:
    """Console text of a metric: 4 decimals below 100, 2 above, thousands separators."""
    if value is None:
        return missing
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 100 else f"{value:,.2f}"
    return str(value)
