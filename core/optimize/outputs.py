"""The files of an optimizer run in ``reports/<opt-id>/``.

``journal.jsonl`` is written as the run goes (``core.optimize.journal``); everything else at
the end, each file whole (temporary name, then ``os.replace``): ``top100.csv``,
``evaluations.csv`` (every evaluated set with its id), ``best.toml``, ``phases.csv``,
``returns.parquet`` (daily P&L in dollars per evaluated set: rows = sessions, columns = ids),
``oos.json``, ``overfitting.json``, ``report.pdf`` and ``run.json``; finally the run marker
of ``core.outputs.atomic`` so a later ``--force`` may replace the folder.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.config import AppConfig
from core.outputs.atomic import MARKER_FORMAT, RUN_MARKER

SKIP_IN_TOML = {"run": {"out", "progress", "debug", "no_plot"}, "optimizer": None, "live": None}


def write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(_clean(obj), indent=2, sort_keys=False, default=str) + "\n")


def _clean(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, np.floating):
        return _clean(float(x))
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.ndarray):
        return [_clean(v) for v in x.tolist()]
    if isinstance(x, Mapping):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _csv_value(r.get(k)) for k in columns})
    write_text(path, buf.getvalue())


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if not math.isfinite(v) else repr(v)
    return v


# ---------------------------------------------------------------------------------------
# best.toml


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, str) and _is_date(v):
        return v
    return json.dumps(str(v))


def _is_date(s: str) -> bool:
    try:
        dt.date.fromisoformat(s)
        return len(s) == 10
    except ValueError:
        return False


def config_toml(cfg: AppConfig, header: str = "") -> str:
    """The config as TOML: every value that differs from the defaults (loadable with --config)."""
    cur, ref = cfg.to_json_dict(), AppConfig().to_json_dict()
    lines = [f"# {line}" for line in header.splitlines()] if header else []
    for section, values in cur.items():
        skip = SKIP_IN_TOML.get(section, set())
        if skip is None:
            continue
        rows, tables = [], []
        for key, value in values.items():
            if key in skip or value is None or value == ref[section].get(key):
                continue
            if isinstance(value, dict):
                tables.append((key, value))
            else:
                rows.append(f"{key} = {_toml_value(value)}")
        if rows:
            lines += ["", f"[{section}]", *rows]
        for key, table in tables:
            lines += ["", f"[{section}.{key}]", *(f"{k} = {_toml_value(v)}" for k, v in table.items())]
    return "\n".join(lines).lstrip("\n") + "\n"


# ---------------------------------------------------------------------------------------
# tables


RESULT_COLUMNS = ("fitness", "raw_fitness", "net", "max_dd", "sharpe", "trades", "guard", "path")


def result_row(r: Mapping[str, Any], rank: int, eval_id: str, phase: int | None) -> dict[str, Any]:
    row: dict[str, Any] = {"rank": rank, "eval_id": eval_id, "phase": phase, **dict(r["point"])}
    if "invalid" in r:
        row["guard"] = f"invalid: {r['invalid']}"
        return row
    for k in RESULT_COLUMNS:
        row[k] = r["score"][k]
    return row


def returns_frame(results: Sequence[Mapping[str, Any]], ids: Mapping[str, str], field: str = "daily_pnl"
                  ) -> pd.DataFrame:
    """Sessions x evaluated sets (columns: eval ids) of the daily P&L (or returns)."""
    cols: dict[str, pd.Series] = {}
    for r in results:
        if "invalid" in r:
            continue
        s = r["score"]
        cols[ids[r["key"]]] = pd.Series(s[field], index=pd.DatetimeIndex(pd.to_datetime(s["days"])), dtype=float)
    if not cols:
        return pd.DataFrame()
    frame = pd.DataFrame(cols)
    frame.index.name = "date"
    return frame


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(tmp)
    os.replace(tmp, path)


def write_marker(folder: Path) -> None:
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if p.is_file() and p.name != RUN_MARKER and not p.name.endswith(".tmp"))
    write_text(folder / RUN_MARKER, json.dumps({"format": MARKER_FORMAT, "files": files}, indent=1))


# ---------------------------------------------------------------------------------------
# report.pdf


def write_report(path: Path, summary: Mapping[str, Any], search_results: Sequence[Mapping[str, Any]],
                 phase_of: Mapping[str, int], grids: Mapping[int, Mapping[str, Sequence[Any]]],
                 winner_is: Mapping[str, Any] | None, winner_oos: Mapping[str, Any] | None,
                 logits: Sequence[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    tmp = path.with_name(f".{path.name}.tmp")
    with PdfPages(tmp) as pdf:
        fig = plt.figure(figsize=(8.27, 11.69))
        fig.text(0.06, 0.96, "Optimizer report", fontsize=16, weight="bold", va="top")
        fig.text(0.06, 0.92, "\n".join(_summary_lines(summary)), fontsize=8.5, va="top", family="monospace")
        pdf.savefig(fig)
        plt.close(fig)
        for phase, grid in grids.items():
            rows = [r for r in search_results if phase_of.get(r["key"]) == phase and "invalid" not in r]
            if not rows or not grid:
                continue
            names = list(grid)
            ncol = 2
            nrow = math.ceil(len(names) / ncol)
            fig, axes = plt.subplots(nrow, ncol, figsize=(8.27, 2.6 * nrow + 1), squeeze=False)
            fig.suptitle(f"Phase {phase} sensitivity: best and median fitness per value (eligible sets)")
            for ax, name in zip(axes.ravel(), names, strict=False):
                vals = list(grid[name])
                best, med = [], []
                for v in vals:
                    f = [r["score"]["fitness"] for r in rows if r["point"].get(name) == v and not r["score"]["guard"]]
                    best.append(max(f) if f else np.nan)
                    med.append(float(np.median(f)) if f else np.nan)
                x = np.arange(len(vals))
                ax.plot(x, best, "o-", label="best")
                ax.plot(x, med, "s--", label="median")
                ax.set_xticks(x, [str(v) for v in vals], fontsize=7)
                ax.set_title(name, fontsize=8)
                ax.legend(fontsize=6)
            for ax in axes.ravel()[len(names):]:
                ax.axis("off")
            fig.tight_layout()
            pdf.savefig(fig)
            plt.close(fig)
        fig, axes = plt.subplots(2, 1, figsize=(8.27, 9))
        ax = axes[0]
        for label, res in (("in-sample", winner_is), ("out-of-sample", winner_oos)):
            if res is not None and "score" in res:
                s = res["score"]
                ax.plot(pd.to_datetime(s["days"]), np.cumsum(s["daily_pnl"]), label=label)
        ax.set_title("Winner: cumulative P&L, in-sample and out-of-sample ($)")
        ax.legend(fontsize=7)
        ax = axes[1]
        if len(logits):
            ax.hist(np.asarray(logits, float), bins=40, color="tab:gray")
            ax.axvline(0.0, color="tab:red")
        ax.set_title(f"CSCV logits of the in-sample winner's OOS rank (PBO = {summary.get('pbo')})")
        fig.tight_layout()
        pdf.savefig(fig)
        plt.close(fig)
    os.replace(tmp, path)


def _summary_lines(s: Mapping[str, Any]) -> list[str]:
    out = []
    for k, v in s.items():
        if isinstance(v, Mapping):
            out.append(f"{k}:")
            out += [f"    {kk}: {_fmt(vv)}" for kk, vv in v.items()]
        else:
            out.append(f"{k}: {_fmt(v)}")
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
