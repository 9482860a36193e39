"""Every bad input ends in exit 2 and ONE line on stderr that names the place, and writes nothing.

A table of cases across options, config files, bar files, chain files, output folders and run
folders, run through ``core.main.main`` in-process.  Each case builds its files in ``tmp_path``,
runs the command there, and checks: exit code 2, exactly one stderr line, every expected
fragment (the option, file, line or key) in it, and no file added, removed or changed.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.pricing import bsm_price
from core.main import main

ROOT = Path(__file__).resolve().parents[1]
DAYS = ("2018-03-05", "2018-03-06")
EXPIRIES = ("2018-03-16", "2018-04-20")
STRIKES = np.arange(262.0, 279.0)


def bar_rows(days: tuple[str, ...] = DAYS) -> list[str]:
    """Valid 5-minute bars (close labels 09:35..16:00 New York, naive) around 270."""
    rows, close = [], 270.0
    for day in days:
        for k, ts in enumerate(pd.date_range(f"{day} 09:35", f"{day} 16:00", freq="5min")):
            o, close = close, 270.0 + 0.3 * np.sin(k / 5.0)
            rows.append(f"{ts:%Y-%m-%d %H:%M:%S},{o:.2f},{max(o, close) + 0.05:.2f},{min(o, close) - 0.05:.2f},"
                        f"{close:.2f},1000")
    return rows


BARS_HEADER = "ts,open,high,low,close,volume"


def bars_text(rows: list[str] | None = None, header: str = BARS_HEADER) -> str:
    return "\n".join([header, *(bar_rows() if rows is None else rows)]) + "\n"


def with_line(text: str, line: int, new: str) -> str:
    """``text`` with file line ``line`` (header = 1) replaced by ``new``."""
    lines = text.splitlines()
    lines[line - 1] = new
    return "\n".join(lines) + "\n"


def chain_rows(symbol: str | None = None) -> list[str]:
    rows = []
    for day in DAYS:
        for expiry in EXPIRIES:
            tau = (pd.Timestamp(expiry) - pd.Timestamp(day)).days / 365.0
            for right in ("call", "put"):
                price = bsm_price(270.0, STRIKES, tau, 0.02, 0.018, np.full(STRIKES.size, 0.15), right == "call")
                for k, p in zip(STRIKES, price, strict=True):
                    row = f"{day} 10:00:00,{expiry},{k:g},{right},{p - 0.02:.2f},{p + 0.02:.2f},270.0"
                    rows.append(row + (f",{symbol}" if symbol else ""))
    return rows


CHAIN_HEADER = "quote_date,expiration,strike,option_type,bid,ask,underlying_price"


def chain_text(rows: list[str] | None = None, header: str = CHAIN_HEADER) -> str:
    return "\n".join([header, *(chain_rows() if rows is None else rows)]) + "\n"


GOOD_BARS = bars_text()
GOOD_CHAIN = chain_text()
DESCRIBE = ["--mode", "data", "describe", "--spot-data", "{tmp}/bars.csv"]
DESCRIBE_CHAIN = [*DESCRIBE, "--options-data", "{tmp}/chain.csv"]


def _parquet_bytes_with_bad_row() -> bytes:
    import io

    frame = pd.read_csv(io.StringIO(GOOD_BARS))
    frame.loc[9, "high"] = frame.loc[9, "low"] - 1.0
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


@dataclass(frozen=True)
class Case:
    argv: list[str]
    expect: tuple[str, ...]
    files: dict[str, str | bytes | Callable[[], bytes]] = field(default_factory=dict)
    folders: tuple[str, ...] = ()


def _bars_case(text: str | bytes, *expect: str, name: str = "bars.csv", argv: list[str] | None = None) -> Case:
    return Case(argv or [*DESCRIBE[:-1], f"{{tmp}}/{name}"], (name, *expect), {name: text})


def _chain_case(text: str | bytes, *expect: str, argv_extra: tuple[str, ...] = ()) -> Case:
    return Case([*DESCRIBE_CHAIN, *argv_extra], ("chain.csv", *expect), {"bars.csv": GOOD_BARS, "chain.csv": text})


def _config_case(name: str, text: str | bytes, *expect: str) -> Case:
    return Case(["--config", f"{{tmp}}/{name}", "--mode", "data", "describe"], expect, {name: text})


RUN_MARKER = '{"format": "quantor-run/1", "files": ["run.json"]}'
B = GOOD_BARS  # line 2 is the first bar (2018-03-05 09:35), line 80 the first bar of 2018-03-06
CASES: dict[str, Case] = {
    # ---- options
    "cash-not-number": Case(["--bt-cash", "lots"], ("--bt-cash",)),
    "cash-negative": Case(["--bt-cash", "-5"], ("--bt-cash",)),
    "start-not-date": Case(["--bt-start", "2018-13-01"], ("--bt-start",)),
    "start-after-end": Case(["--bt-start", "2018-06-01", "--bt-end", "2018-01-02"], ("--bt-start",)),
    "start-before-data": Case(["--bt-start", "1990-01-02", "--bt-end", "1990-02-01"], ("--bt-start",)),
    "dte-min-above-max": Case(["--dte-min", "50", "--dte-max", "40"], ("--dte-min",)),
    "delta-out-of-range": Case(["--delta-low", "0.6"], ("--delta-low",)),
    "wing-min-above-max": Case(["--wing-min", "20", "--wing-max", "10"], ("--wing-min",)),
    "fill-model-unknown": Case(["--fill-model", "magic"], ("--fill-model",)),
    "structure-unknown": Case(["--structure", "butterfly"], ("--structure",)),
    "source-unknown": Case(["--data-source", "ftp"], ("--data-source",)),
    "timeframes-junk": Case(["--mtf-timeframes", "1,abc"], ("--mtf-timeframes",)),
    "entry-time-junk": Case(["--entry-time", "25:00"], ("--entry-time",)),
    "underlying-lowercase": Case(["--underlying", "spy"], ("--underlying",)),
    "seed-negative": Case(["--seed", "-1"], ("--seed",)),
    "quantity-zero": Case(["--quantity", "0"], ("--quantity",)),
    "misspelt-option": Case(["--bt-stat", "2018-01-02"], ("--bt-stat", "--bt-start")),
    "files-without-spot": Case(["--data-source", "files", "--mode", "data", "describe"], ("files", "spot")),
    "spot-file-missing": Case([*DESCRIBE[:-1], "{tmp}/nope.csv"], ("nope.csv", "not found")),
    "data-unknown-command": Case(["--mode", "data", "bogus"], ("bogus",)),
    "chain-without-date": Case(["--mode", "data", "chain"], ("--date",)),
    "chain-weekend": Case(["--mode", "data", "chain", "--date", "2018-03-03"], ("2018-03-03",)),
    "chain-off-grid-time": Case(["--mode", "data", "chain", "--date", "2018-03-05", "--time", "10:02"], ("10:02",)),
    "chain-bad-time": Case(["--mode", "data", "chain", "--date", "2018-03-05", "--time", "ten"], ("ten",)),
    "chain-no-expiry": Case(["--mode", "data", "chain", "--date", "2018-03-05", "--dte-min", "25", "--dte-max",
                             "30"], ("25 <= DTE <= 30", "nearest")),
    "bars-bad-date": Case(["--mode", "data", "bars", "--date", "2018-02-30"], ("2018-02-30",)),
    "bars-bad-tf": Case(["--mode", "data", "bars", "--date", "2018-03-05", "--tf", "abc"], ("--tf",)),
    "export-incomplete": Case(["--mode", "data", "export", "--start", "2018-03-05"], ("export",)),
    "report-without-run": Case(["--mode", "report"], ("--run",)),
    "report-missing-run": Case(["--mode", "report", "--run", "{tmp}/nothing"], ("nothing",)),
    "report-foreign-folder": Case(["--mode", "report", "--run", "{tmp}/mine"], ("mine",),
                                  {"mine/notes.txt": "my notes"}),
    "report-equity-without-columns": Case(["--mode", "report", "--run", "{tmp}/r"], ("equity.csv", "columns"),
                                 {"r/run.json": "{not json", "r/metrics.json": "{}", "r/equity.csv": "timestamp\n",
                                  "r/trades.csv": "position_id\n"}),
    "train-model-exists": Case(["--mode", "train", "--model", "{tmp}/mine.pth", "--epochs", "1"],
                               ("--model", "mine.pth", "--force"), {"mine.pth": b"precious weights"}),
    # ---- config files
    "config-missing": Case(["--config", "{tmp}/none.toml"], ("none.toml",)),
    "config-bad-toml": _config_case("c.toml", "[backtest\ncash = 1\n", "c.toml"),
    "config-binary": _config_case("c.toml", b"\x00\x01\x02\xff junk", "c.toml"),
    "config-unknown-key": _config_case("c.toml", "[backtest]\nfoo = 1\n", "foo"),
    "config-bad-value": _config_case("c.toml", '[backtest]\ncash = "lots"\n', "c.toml", "cash"),
    "config-unknown-section": _config_case("c.toml", "[nonsense]\nx = 1\n", "nonsense"),
    "config-yaml-list": _config_case("c.yaml", "- 1\n- 2\n", "c.yaml"),
    "config-extension": _config_case("c.ini", "[backtest]\n", "c.ini"),
    "config-cross-field": _config_case("c.toml", "[strategy]\ndte_min = 50\ndte_max = 40\n", "dte_min"),
    # ---- bar files
    "bars-empty-file": _bars_case("", "empty"),
    "bars-header-only": _bars_case(BARS_HEADER + "\n", "no bars"),
    "bars-gzip-named-csv": _bars_case(gzip.compress(B.encode()), "gzip"),
    "bars-csv-named-parquet": _bars_case(B, "Parquet", name="bars.parquet"),
    "bars-binary": _bars_case(b"\x00\x01\x02\x03" * 100, "binary"),
    "bars-not-utf8": _bars_case(BARS_HEADER.encode() + b"\n\xff\xfe\xfa,1,2,3,4,5\n", "line 2", "UTF-8"),
    "bars-single-column": _bars_case("just some words\nmore words\n", "line 1"),
    "bars-missing-column": _bars_case(bars_text(header="ts,open,high,low,close,vol"), "volume"),
    "bars-unsorted": _bars_case(with_line(B, 5, bar_rows()[0]), "line 5", "sort"),
    "bars-duplicate": _bars_case(with_line(B, 3, bar_rows()[0]), "line 3", "repeats"),
    "bars-nan-close": _bars_case(with_line(B, 7, "2018-03-05 10:05:00,270,270.1,269.9,,1000"), "line 7", "close"),
    "bars-high-below-low": _bars_case(with_line(B, 8, "2018-03-05 10:10:00,270,269,271,270,1000"), "line 8",
                                      "high"),
    "bars-negative-price": _bars_case(with_line(B, 9, "2018-03-05 10:15:00,-270,270.1,-270.2,270,1000"),
                                      "line 9", "positive"),
    "bars-negative-volume": _bars_case(with_line(B, 9, "2018-03-05 10:15:00,270,270.1,269.9,270,-5"), "line 9",
                                       "volume"),
    "bars-bad-timestamp": _bars_case(with_line(B, 6, "yesterday,270,270.1,269.9,270,1000"), "line 6", "ts"),
    "bars-pre-market": _bars_case(bars_text(["2018-03-05 05:20:00,270,270.1,269.9,270,1000", *bar_rows()[1:]]),
                                  "line 2", "session"),
    "bars-weekend": _bars_case(bars_text([*bar_rows(), "2018-03-10 10:00:00,270,270.1,269.9,270,1000"]),
                               "line 158", "2018-03-10"),
    "bars-bad-tick": _bars_case(with_line(B, 40, "2018-03-05 12:45:00,270,27000,269.9,27000,1000"), "line 40",
                                "bad tick"),
    "bars-low-tick": _bars_case(with_line(B, 41, "2018-03-05 12:50:00,270,270.2,2.7,270,1000"), "line 41", "low"),
    "bars-mixed-zones": _bars_case(with_line(B, 4, "2018-03-05T14:45:00Z,270,270.1,269.9,270,1000"), "line",
                                   "zone"),
    "bars-folder": Case([*DESCRIBE[:-1], "{tmp}/folder"], ("folder",), folders=("folder",)),
    "bars-long-line": _bars_case(BARS_HEADER + "\n" + "9" * 70_000 + "\n", "longer than"),
    "bars-ragged-row": _bars_case(with_line(B, 10, "2018-03-05 10:15:00,270,270.1,269.9,270,1000,7,8,9"),
                                  "line 10"),
    "bars-parquet-bad-row": _bars_case(_parquet_bytes_with_bad_row(), "row 10", "high", name="bars.parquet"),
    "bars-backtest-same-verdict": _bars_case(
        with_line(B, 8, "2018-03-05 10:10:00,270,269,271,270,1000"), "line 8", "high",
        argv=["--mode", "backtest", "--spot-data", "{tmp}/bars.csv", "--out", "{tmp}/run"]),
    # ---- chain files
    "chain-empty-file": _chain_case("", "empty"),
    "chain-crossed": _chain_case(with_line(GOOD_CHAIN, 3, "2018-03-05 10:00:00,2018-03-16,263,call,9,8,270.0"),
                                 "line 3", "crossed"),
    "chain-expired": _chain_case(with_line(GOOD_CHAIN, 4, "2018-03-05 10:00:00,2018-03-01,264,call,7,8,270.0"),
                                 "line 4", "expiration"),
    "chain-option-type": _chain_case(with_line(GOOD_CHAIN, 5, "2018-03-05 10:00:00,2018-03-16,265,straddle,5,6,"
                                                              "270.0"), "line 5", "option_type"),
    "chain-negative-strike": _chain_case(with_line(GOOD_CHAIN, 6, "2018-03-05 10:00:00,2018-03-16,-5,call,5,6,"
                                                                  "270.0"), "line 6", "strike"),
    "chain-missing-ask": _chain_case(chain_text(header=CHAIN_HEADER.replace(",ask,", ",offer,")), "ask"),
    "chain-junk-ask": _chain_case(with_line(GOOD_CHAIN, 7, "2018-03-05 10:00:00,2018-03-16,267,call,5,abc,270.0"),
                                  "line 7", "ask"),
    "chain-duplicate": _chain_case(with_line(GOOD_CHAIN, 3, chain_rows()[0]), "line 3", "repeats"),
    "chain-unsorted": _chain_case(chain_text(chain_rows()[70:] + chain_rows()[:70]), "earlier"),
    "chain-other-underlying": _chain_case(chain_text(chain_rows("QQQ"), CHAIN_HEADER + ",underlying_symbol"),
                                          "line 2", "QQQ", "SPY"),
    "chain-is-a-bars-file": _chain_case(GOOD_BARS, "quote_date"),
    # ---- output folders (data export writes; the rule is the same for every mode)
    "out-user-folder": Case(["--mode", "data", "export", "--start", "2018-03-05", "--end", "2018-03-05", "--out",
                             "{tmp}/mine"], ("--out", "mine", "did not write"), {"mine/thesis.docx": "my work"}),
    "out-is-a-file": Case(["--mode", "data", "export", "--start", "2018-03-05", "--end", "2018-03-05", "--out",
                           "{tmp}/notes.txt"], ("--out", "notes.txt", "is a file"), {"notes.txt": "x"}),
    "out-current-folder": Case(["--mode", "data", "export", "--start", "2018-03-05", "--end", "2018-03-05",
                                "--out", "."], ("--out", "current folder"), {"keep.txt": "x"}),
    "out-parent-is-file": Case(["--mode", "data", "export", "--start", "2018-03-05", "--end", "2018-03-05",
                                "--out", "{tmp}/notes.txt/run"], ("--out", "is a file"), {"notes.txt": "x"}),
    "out-previous-run-no-force": Case(["--mode", "data", "export", "--start", "2018-03-05", "--end", "2018-03-05",
                                       "--out", "{tmp}/old"], ("--out", "previous run", "--force"),
                                      {"old/.quantor-run": RUN_MARKER, "old/run.json": "{}"}),
    "out-backtest-user-folder": Case(["--bt-start", "2018-03-01", "--bt-end", "2018-03-09", "--no-plot", "--out",
                                      "{tmp}/mine"], ("--out", "mine"), {"mine/thesis.docx": "my work"}),
}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _build(case: Case, tmp: Path) -> None:
    for name in case.folders:
        (tmp / name).mkdir(parents=True)
    for name, content in case.files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content() if callable(content) else content
        path.write_bytes(data if isinstance(data, bytes) else data.encode())


def test_there_are_at_least_sixty_cases() -> None:
    assert len(CASES) >= 60


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_and_exit_2(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[name]
    _build(case, tmp_path)
    monkeypatch.chdir(tmp_path)
    before, reports = _snapshot(tmp_path), sorted(os.listdir(ROOT / "reports"))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in case.argv]
    code = main([*argv, "--no-progress"] if "--no-progress" not in argv else argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    for fragment in case.expect:
        assert fragment in lines[0], (fragment, lines[0])
    assert "internal error" not in lines[0]
    assert _snapshot(tmp_path) == before  # nothing written, nothing lost
    assert sorted(os.listdir(ROOT / "reports")) == reports
