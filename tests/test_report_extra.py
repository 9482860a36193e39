"""Stress and benchmark PDFs: built from a real short stress run and from hand-made JSON."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pypdf
import pytest

from core.config import build_config
from core.dto import DataError
from core.outputs.report_extra import (
    STRESS_SECTIONS,
    benchmark_png,
    build_benchmark_report,
    build_stress_report,
    scenario_png,
    tornado_png,
)
from core.stress.run import run_stress

SCENARIO_KEYS = ("pnl_full", "pnl_approx", "approx_error", "pnl_delta", "pnl_gamma", "pnl_vega", "pnl_theta",
                 "pnl_from_entry")


def usd(x: float) -> str:
    """Cents, thousands separators, sign before the dollar: -1234.567 -> -$1,234.57; -0.001 -> $0.00."""
    cents = round(x, 2) + 0.0
    return f"-${-cents:,.2f}" if cents < 0 else f"${cents:,.2f}"


def pdf_lines(path: Path) -> tuple[int, list[str], list[str]]:
    """(pages, text lines of all pages, outline titles)."""
    reader = pypdf.PdfReader(str(path))
    lines = [line.strip() for page in reader.pages for line in page.extract_text().splitlines()]
    return len(reader.pages), lines, [item["/Title"] for item in reader.outline]


@pytest.fixture(scope="module")
def stress_dir(tmp_path_factory) -> Path:
    """A real stress run on Feb-Mar 2018: one replayed window, one window before the data (skipped),
    profit_pct down/up and wing_min (5 -> 2.5, clamped above 0; 5 -> 10 leaves $25k no trade: marked)."""
    out = tmp_path_factory.mktemp("stress") / "run"
    cfg = build_config(None, {"run.progress": False, "backtest.start": "2018-02-01", "backtest.end": "2018-03-30"})
    run_stress(cfg, out_dir=out, windows={"Feb 2018": ("2018-02-01", "2018-02-28"),
                                          "Before data": ("1990-01-02", "1990-03-30")},
               sensitivity_params=["exits.profit_pct", "strategy.wing_min"])
    return out


@pytest.fixture(scope="module")
def stress_pdf(stress_dir: Path) -> Path:
    return build_stress_report(stress_dir)


def test_stress_pdf_sections_and_identity(stress_dir: Path, stress_pdf: Path) -> None:
    payload = json.loads((stress_dir / "stress_report.json").read_text())
    pages, lines, outline = pdf_lines(stress_pdf)
    assert stress_pdf == stress_dir / "stress_report.pdf"
    assert pages >= 2
    assert outline == list(STRESS_SECTIONS)
    text = " ".join(lines)
    for title in STRESS_SECTIONS:
        assert title in lines
    assert payload["run"]["config_hash"] in text
    assert "SYNTHESISED from real daily OHLCV" in text and "MODELLED from a volatility surface" in text
    assert "modelled proxy up to 2014-01-02" in text  # the embedded source's VIX proxy span
    assert not [p for p in stress_dir.iterdir() if p.name.startswith(".") and p.name != ".quantor-run"]  # no tmp left


def test_scenario_rows_equal_the_json(stress_dir: Path, stress_pdf: Path) -> None:
    """Each scenario row of the PDF is the JSON row: spot to 2 decimals, the P&L columns as dollars."""
    scenarios = json.loads((stress_dir / "stress_report.json").read_text())["scenarios"]
    _, lines, _ = pdf_lines(stress_pdf)
    assert len(scenarios) == 5
    for s in scenarios:
        at = lines.index(s["scenario"])
        expected = [f"{s['spot_new']:.2f}", *(usd(s[k]) for k in SCENARIO_KEYS), "yes"]
        assert lines[at + 1: at + 11] == expected


def test_historical_and_sensitivity_tables(stress_dir: Path, stress_pdf: Path) -> None:
    payload = json.loads((stress_dir / "stress_report.json").read_text())
    _, lines, _ = pdf_lines(stress_pdf)
    text = " ".join(lines)
    feb = next(w for w in payload["historical"] if w["window"] == "Feb 2018")
    at = lines.index("Feb 2018")
    assert lines[at + 1: at + 5] == ["2018-02-01", "2018-02-28", usd(feb["net_profit"]), usd(feb["max_drawdown"])]
    assert lines[at + 10] == "real"  # last column; Feb 2018 is after the proxy span
    assert "Before data" in lines and "skipped:" in text
    idle = next(r for r in payload["sensitivity"] if r["status"] != "ok")
    assert idle["parameter"] == "strategy.wing_min" and idle["direction"] == "up" and idle["trades"] == 0
    assert idle["status"].startswith("no trades: the entry was skipped") and idle["net_profit_change"] is None
    assert "5 -> 10" in lines and "5 -> 2.5" in lines and "no trades: the entry was skipped" in text
    for r in payload["sensitivity"]:
        if r["status"] == "ok" and r["parameter"] != "base":
            assert usd(r["net_profit_change"]) in lines


def test_hand_made_payload_bound_breach_and_empty_sections(stress_dir: Path, tmp_path: Path) -> None:
    """Book: entry value -$100, today's value -$90, bound $400 -> chart floor -400 - (-90 + 100) = -$410.00."""
    payload = json.loads((stress_dir / "stress_report.json").read_text())
    payload["portfolio"].update(entry_value=-100.0, max_loss_bound=400.0)
    row = dict.fromkeys(SCENARIO_KEYS, 0.0)
    row.update(scenario="hand_crash", spot=100.0, spot_new=80.0, value=-90.0, value_new=-520.0, pnl_full=-430.0,
               pnl_delta=-1234.567, pnl_approx=-1234.567, approx_error=-804.567, pnl_vega=-0.001, pnl_theta=-0.0,
               pnl_from_entry=-420.0, max_loss_bound=400.0, within_bound=False)
    payload.update(scenarios=[row], historical=[], sensitivity=[payload["sensitivity"][0]])
    (tmp_path / "stress_report.json").write_text(json.dumps(payload))
    _, lines, _ = pdf_lines(build_stress_report(tmp_path))
    text = " ".join(lines)
    at = lines.index("hand_crash")
    assert lines[at + 1: at + 11] == ["80.00", "-$430.00", "-$1,234.57", "-$804.57", "-$1,234.57", "$0.00", "$0.00",
                                      "$0.00", "-$420.00", "no"]
    assert "the bound sits at -$410.00" in text and "BOUND BREACHED in: hand_crash" in text
    assert "No historical windows were replayed" in text
    assert "No sensitivity run completed" in text


def test_rebuild_gives_identical_bytes(stress_dir: Path, stress_pdf: Path, tmp_path: Path) -> None:
    copy_dir = tmp_path / "copy"
    shutil.copytree(stress_dir, copy_dir)
    assert build_stress_report(copy_dir).read_bytes() == stress_pdf.read_bytes()


def test_charts_with_nothing_to_draw_are_none() -> None:
    assert scenario_png([], -100.0) is None
    assert tornado_png([{"parameter": "base", "direction": "base", "net_profit": 1.0}]) is None
    assert tornado_png([{"parameter": "exits.profit_pct", "direction": "down", "status": "skipped: x"}]) is None
    assert benchmark_png([{"workload": "chain build", "ms_per_chain": 1.8}]) is None


BENCH = {
    "machine": {"python": "3.11.7", "processor": "x86_64"},
    "peak_memory_mib_after_backtests": 418.7,
    "peak_memory_mib": 1034.1,
    "workloads": [
        {"workload": "plain Backtrader SMA(20)+RSI(14)", "seconds": 1.612, "bars": 19470,
         "seconds_per_10k_bars": 0.8279, "bars_per_second": 12078.3, "ratio_vs_plain": 1.0, "target": "reference"},
        {"workload": "baseline iron condor", "seconds": 2.7372, "bars": 19470, "seconds_per_10k_bars": 1.4058,
         "bars_per_second": 7113.2, "ratio_vs_plain": 1.698, "target": "<= 3x plain"},
        {"workload": "full-intelligence iron condor (MTF + fuzzy)", "seconds": 1.444, "bars": 19470,
         "seconds_per_10k_bars": 0.7416, "bars_per_second": 13483.8, "ratio_vs_plain": 0.896, "target": "<= 4x plain"},
        {"workload": "forecaster training, chunked scan (4L d64, 32x128, CPU)", "tokens_per_second": 45006.7,
         "figure": "45,007 tokens/s", "target": ">= 28k tokens/s"},
    ],
}


def test_benchmark_pdf_is_one_page_with_every_workload(tmp_path: Path) -> None:
    path = tmp_path / "benchmark.json"
    path.write_text(json.dumps(BENCH))
    pdf = build_benchmark_report(path)
    pages, lines, _ = pdf_lines(pdf)
    assert pdf == tmp_path / "benchmark.pdf" and pages == 1
    words = " ".join(lines)
    for w in BENCH["workloads"]:
        assert w["workload"] in words
    at = lines.index("baseline iron condor")
    assert lines[at + 1: at + 6] == ["2.737", "1.4058", "7,113", "1.698", "<= 3x plain"]
    assert "peak memory 418.7 MiB after the backtests, 1,034.1 MiB in all" in words


def test_benchmark_marks_missed_targets_and_records_the_machine(tmp_path: Path) -> None:
    from core.bench.run import is_busy, machine_state, target_met

    assert target_met({"ratio_vs_plain": 1.9, "target": "<= 1.8x plain"}) is False
    assert target_met({"ratio_vs_plain": 1.7, "target": "<= 1.8x plain"}) is True
    assert target_met({"seconds": 1.2, "target": "<= 1 s"}) is False
    assert target_met({"ms_per_chain": 4.0, "target": "<= 5 ms"}) is True
    assert target_met({"speedup_vs_quantlib": 80.0, "target": ">= 100x QuantLib"}) is False
    assert target_met({"tokens_per_second": 27_000.0, "target": ">= 28k tokens/s"}) is False
    assert target_met({"tokens_per_second": None, "target": ">= 28k tokens/s"}) is None
    assert target_met({"seconds": 1.0, "target": "reference"}) is None
    state = machine_state()
    assert state["cpu_count"] >= 1 and len(state["load_average"]) == 3 and state["threads"]["live_threads"] >= 1
    assert is_busy({"cpu_count": 4, "load_average": [2.5, 1.0, 1.0]})
    assert not is_busy({"cpu_count": 4, "load_average": [1.5, 3.0, 3.0]})
    data = copy.deepcopy(BENCH)
    baseline = next(w for w in data["workloads"] if w["workload"] == "baseline iron condor")
    baseline.update(target="<= 1.5x plain", target_met=False)
    data["missed_targets"] = ["baseline iron condor"]
    data["machine"].update(load_average_before=[9.5, 8.0, 7.0], load_average_after=[9.0, 8.0, 7.0], cpu_count=4,
                           threads={"live_threads": 1, "omp_num_threads": "2"}, busy=True)
    path = tmp_path / "benchmark.json"
    path.write_text(json.dumps(data))
    _, lines, _ = pdf_lines(build_benchmark_report(path))
    words = " ".join(lines)
    at = lines.index("baseline iron condor")
    assert lines[at + 1: at + 7] == ["2.737", "1.4058", "7,113", "1.698", "<= 1.5x plain", "MISSED"]
    assert "MISSED targets: baseline iron condor" in words and "WARNING: the machine was busy" in words
    assert "Load average [9.5, 8.0, 7.0] before" in words and "omp_num_threads 2" in words


def test_benchmark_pdf_stays_one_page_when_long(tmp_path: Path) -> None:
    many = copy.deepcopy(BENCH)
    many["workloads"] += [{"workload": f"extra workload {i}", "seconds": 0.5 + i, "figure": "x"} for i in range(60)]
    path = tmp_path / "bench_many.json"
    path.write_text(json.dumps(many))
    out = tmp_path / "elsewhere" / "summary.pdf"
    out.parent.mkdir()
    pages, lines, _ = pdf_lines(build_benchmark_report(path, out))
    assert pages == 1 and "extra workload 59" in lines


@pytest.mark.parametrize("content", [None, "{not json", "[1, 2]", '{"run": {}}'])
def test_bad_stress_folder_raises_one_line_data_error(tmp_path: Path, content: str | None) -> None:
    if content is not None:
        (tmp_path / "stress_report.json").write_text(content)
    with pytest.raises(DataError, match="stress_report.json") as info:
        build_stress_report(tmp_path)
    assert "\n" not in str(info.value) and "--mode stress" in str(info.value)
    assert not (tmp_path / "stress_report.pdf").exists()


def test_missing_stress_folder_and_benchmark_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        build_stress_report(tmp_path / "nope")
    with pytest.raises(DataError, match=r"benchmark\.json is missing: rerun .*--mode benchmark"):
        build_benchmark_report(tmp_path / "benchmark.json")
    (tmp_path / "bad.json").write_text(json.dumps({"workloads": [{"seconds": 1.0}]}))
    with pytest.raises(DataError, match="lacks a 'workloads' list"):
        build_benchmark_report(tmp_path / "bad.json")
