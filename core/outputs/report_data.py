"""Run-folder data for the PDF report: reading the saved files and the measures derived from them.

Reads ``run.json``, ``metrics.json``, ``equity.csv`` and ``trades.csv`` (required) and, when
present, ``baseline_metrics.json``, ``greeks.csv``, ``factor_attribution.csv`` and
``decisions.log``.  Derived measures:

* monthly return ``R_m = C_m / C_{m-1} - 1`` with ``C_m`` the last daily equity close of
  month ``m`` and ``C_0`` the starting cash;
* daily P&L ``E_t - E_{t-1}`` of daily equity closes with ``E_0`` the starting cash;
* DTE at entry ``= expiry - entry date`` (calendar days, New York date of the entry);
* credit / width ``= credit / max(short_put - long_put, long_call - short_call)``;
* days held ``= (exit_time - entry_time) / 1 day``.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analytics.metrics import daily_closes
from core.dto import DataError, Regime

REQUIRED_FILES = ("run.json", "metrics.json", "equity.csv", "trades.csv")
NY = "America/New_York"
PCT_KEYS = frozenset({"total_return", "cagr", "max_drawdown_pct", "volatility", "win_rate", "exposure"})
USD_KEYS = frozenset({"start_cash", "end_equity", "net_profit", "max_drawdown", "expectancy", "avg_win", "avg_loss"})
VAR_KEY = re.compile(r"^(?:(hist|mc)_)?(c?var)_(\d+(?:_\d+)?)$")  # hist_var_95, mc_cvar_99, var_95
RISK_PREFIXES = ("var_", "cvar_", "hist_", "mc_")


def is_risk_key(key: str) -> bool:
    """VaR/CVaR and Monte Carlo keys of metrics.json (shown in the risk section, not the metrics table)."""
    return key.startswith(RISK_PREFIXES)


def risk_label(key: str) -> str:
    """Readable name of a non-VaR risk key (``mc_final_equity_p5`` -> ``final equity, 5th percentile``)."""
    m = re.fullmatch(r"mc_final_equity_p(\d+(?:\.\d+)?)", key)
    if m:
        n = m.group(1)
        suffix = "st" if n.endswith("1") and n != "11" else "th"
        return f"final equity, {n}{suffix} percentile"
    names = {"mc_final_equity_mean": "final equity, mean",
             "mc_final_equity_prob_loss": "probability of ending below the start cash"}
    return names.get(key, key.replace("_", " "))


def var_levels(metrics: dict[str, Any]) -> pd.DataFrame:
    """VaR/CVaR keys as a table: index confidence level ('95%'), columns like 'historical VaR',
    'Monte Carlo CVaR', cells the dollar values (None where a key is absent)."""
    cells: dict[str, dict[str, Any]] = {}
    for key, value in metrics.items():
        m = VAR_KEY.match(key)
        if m:
            method = "Monte Carlo" if m.group(1) == "mc" else "historical"
            level = m.group(3).replace("_", ".") + "%"
            cells.setdefault(f"{method} {'CVaR' if m.group(2) == 'cvar' else 'VaR'}", {})[level] = value
    frame = pd.DataFrame(cells)
    order = [c for c in ("historical VaR", "historical CVaR", "Monte Carlo VaR", "Monte Carlo CVaR") if c in frame]
    return frame[order + [c for c in frame.columns if c not in order]]


@dataclass(frozen=True, slots=True)
class RunFiles:
    """Everything the report reads from one run folder."""

    folder: Path
    run: dict[str, Any]
    metrics: dict[str, Any]
    baseline: dict[str, Any] | None
    trades: pd.DataFrame
    equity: pd.DataFrame
    greeks: pd.DataFrame | None
    factors: pd.DataFrame | None
    decisions: list[dict[str, Any]]  # the structured rows of decisions.jsonl


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}): rerun the backtest") from exc


def _read_csv(path: Path) -> pd.DataFrame:
    """A CSV as a frame; a header-less empty file (a run without trades) is an empty frame."""
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a readable CSV ({exc}): rerun the backtest") from exc


def _check_equity(path: Path, equity: pd.DataFrame) -> None:
    """Every row has a timestamp and a finite equity (a truncated or edited file names its row)."""
    values = pd.to_numeric(equity["equity"], errors="coerce").to_numpy(dtype=float)
    stamps = pd.to_datetime(equity["timestamp"], errors="coerce", utc=True)
    bad = ~np.isfinite(values) | stamps.isna().to_numpy()
    if len(equity) == 0 or bad.any():
        line = int(np.argmax(bad)) + 2 if bad.any() else 2  # the header is line 1
        raise DataError(f"{path}: line {line} has no valid timestamp and equity (truncated or edited file): "
                        "rerun the backtest")


def load_run(run_dir: Path | str) -> RunFiles:
    """Read a run folder; DataError (one line) when the folder or a required file is missing."""
    folder = Path(run_dir)
    if not folder.is_dir():
        raise DataError(f"run folder {folder} does not exist: pass the folder of a finished backtest "
                        "(reports/<run-id>/) with --run")
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            raise DataError(f"{folder / name} is missing: rerun the backtest with --out {folder} to rewrite "
                            f"the run folder ({', '.join(REQUIRED_FILES)} are required)")
    optional = {name: folder / name for name in ("baseline_metrics.json", "greeks.csv", "factor_attribution.csv",
                                                 "decisions.jsonl")}
    equity = _read_csv(folder / "equity.csv")
    if not {"timestamp", "equity"} <= set(equity.columns):
        raise DataError(f"{folder / 'equity.csv'} lacks the timestamp/equity columns: rerun the backtest")
    _check_equity(folder / "equity.csv", equity)
    return RunFiles(
        folder=folder, run=_read_json(folder / "run.json"), metrics=_read_json(folder / "metrics.json"),
        baseline=_read_json(optional["baseline_metrics.json"]) if optional["baseline_metrics.json"].is_file() else None,
        trades=_read_csv(folder / "trades.csv"), equity=equity,
        greeks=_read_csv(optional["greeks.csv"]) if optional["greeks.csv"].is_file() else None,
        factors=_read_csv(optional["factor_attribution.csv"]) if optional["factor_attribution.csv"].is_file() else None,
        decisions=_read_decisions(optional["decisions.jsonl"]),
    )


def format_usd(value: float) -> str:
    """``-$1,234.56`` / ``$1,234.56`` (a value that rounds to zero prints ``$0.00``, never ``$-0.00``)."""
    value = round(value, 2) + 0.0
    return f"-${abs(value):,.2f}" if value < 0 else f"${value:,.2f}"


def format_metric(key: str, value: Any) -> str:
    """Deterministic text of one metrics.json value: fractions as percent with two decimals,
    dollars as ``$1,234.56``, counts as integers, ratios with three decimals, None as ``n/a``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if not isinstance(value, int | float):
        return json.dumps(value, sort_keys=True)
    if key in PCT_KEYS or key.endswith("_pct") or "prob" in key:
        return f"{value * 100:.2f}%"
    if key in USD_KEYS or VAR_KEY.match(key) or "equity" in key:
        return format_usd(float(value))
    if isinstance(value, int):
        return f"{value:,d}"
    return f"{value:,.3f}"


def local_times(ts: pd.Series) -> pd.Series:
    """ISO timestamps (UTC offsets change across DST) as New York times."""
    return pd.to_datetime(ts, utc=True).dt.tz_convert(NY)


def start_cash(run: RunFiles) -> float:
    value = run.metrics.get("start_cash")
    return float(value) if value is not None else float(run.equity["equity"].iloc[0])


def daily_equity(run: RunFiles) -> pd.Series:
    """Last equity mark of each New York session."""
    eq = pd.Series(run.equity["equity"].to_numpy(float), index=pd.DatetimeIndex(local_times(run.equity["timestamp"])))
    return daily_closes(eq)


def monthly_returns(run: RunFiles) -> pd.DataFrame:
    """Year x month (1..12) table of ``C_m / C_{m-1} - 1`` (fractions), ``C_0`` = start cash."""
    closes = daily_equity(run)
    month_end = closes.groupby(closes.index.to_period("M")).last()
    prev = month_end.shift(1)
    prev.iloc[0] = start_cash(run)
    ret = month_end / prev - 1.0
    frame = pd.DataFrame({"year": ret.index.year, "month": ret.index.month, "ret": ret.to_numpy(float)})
    return frame.pivot_table(index="year", columns="month", values="ret").reindex(columns=range(1, 13))


def daily_pnl(run: RunFiles) -> np.ndarray:
    """``E_t - E_{t-1}`` of daily closes, ``E_0`` = start cash (dollars)."""
    closes = daily_equity(run).to_numpy(float)
    return np.diff(np.concatenate(([start_cash(run)], closes)))


def trade_measures(trades: pd.DataFrame) -> pd.DataFrame:
    """Per trade: ``dte`` at entry, ``credit_width`` and ``held_days`` (see module docstring)."""
    entry, exit_ = local_times(trades["entry_time"]), local_times(trades["exit_time"])
    expiry = pd.to_datetime(trades["expiry"])
    width = trades["max_loss"] + trades["credit"]  # the risk width: widest wing for a condor
    return pd.DataFrame({
        "dte": (expiry - entry.dt.tz_localize(None).dt.normalize()).dt.days.to_numpy(float),
        "credit_width": (trades["credit"] / width).to_numpy(float),
        "held_days": ((exit_ - entry).dt.total_seconds() / 86400.0).to_numpy(float),
    })


def regime_names(codes: pd.Series) -> pd.Series:
    """Regime code -> name by the order of ``core.dto.Regime`` (``list(Regime)[code]``)."""
    members = list(Regime)

    def name(code: float) -> str:
        if not math.isfinite(code):
            return "unknown"
        k = int(code)
        return members[k].value if 0 <= k < len(members) and k == code else f"code {code:g}"

    return codes.astype(float).map(name)


def category_stats(pnl: pd.Series, category: pd.Series) -> pd.DataFrame:
    """Per category: trades, win rate, total and mean P&L (dollars), most trades first."""
    grouped = pd.DataFrame({"cat": category.astype(str), "pnl": pnl.astype(float)}).groupby("cat")["pnl"]
    stats = pd.DataFrame({"trades": grouped.size(), "win_rate": grouped.apply(lambda s: float((s > 0).mean())),
                          "total_pnl": grouped.sum(), "mean_pnl": grouped.mean()})
    return stats.sort_values(["trades", "total_pnl"], ascending=[False, True], kind="stable")


def _read_decisions(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: line {n} is not a JSON decision row ({exc.msg}); re-run the backtest") from exc
    return rows


def skip_reasons(decisions: list[dict[str, Any]], top: int = 6) -> tuple[Counter[str], list[tuple[str, int]]]:
    """Counts of decisions by action and the most common skip reasons (by reason code; the
    label is the first text seen for the code, numbers shown as #)."""
    kinds: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    labels: dict[str, str] = {}
    for row in decisions:
        action = str(row.get("action", "")).upper()
        kinds[action] += 1
        if action == "SKIP":
            code = (row.get("codes") or ["unknown"])[0]
            labels.setdefault(code, re.sub(r"\d+(\.\d+)?", "#", str(row.get("text", ""))).strip())
            reasons[code] += 1
    return kinds, [(labels[code], count) for code, count in reasons.most_common(top)]
