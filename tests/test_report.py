"""PDF report: rebuilt from a run folder's saved files (a real short backtest and a hand-made folder)."""

from __future__ import annotations

import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pypdf
import pytest
from PIL import Image

from core.backtest.run import run_backtest
from core.config import build_config
from core.dto import DataError
from core.outputs.backtest import write_outputs
from core.outputs.pdf import build_report, run_report_cli
from core.outputs.report_data import (
    daily_pnl,
    format_metric,
    is_risk_key,
    load_run,
    monthly_returns,
    regime_names,
    risk_label,
    trade_measures,
    var_levels,
)

SECTION_TITLES = [
    "Run identity", "Metrics", "Equity and drawdown", "Monthly returns", "Trade P&L distribution", "Entry and holding",
    "Exit reasons", "Regimes", "Portfolio Greeks", "Factor attribution", "Trades", "Risk: VaR and CVaR",
    "Appendix: configuration",
]
TRADE_SECTIONS_WITHOUT_TRADES = 5  # Trade P&L distribution, Entry and holding, Exit reasons, Regimes, Trades


def _backtest_folder(root: Path, name: str, start: str, end: str, **overrides) -> Path:
    cfg = build_config(None, {"backtest.start": start, "backtest.end": end, "run.progress": False,
                              "run.no_plot": True, **overrides})
    return write_outputs(run_backtest(cfg), str(root / name))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return _backtest_folder(tmp_path_factory.mktemp("report"), "run_small", "2018-03-01", "2018-04-30")


@pytest.fixture(scope="module")
def report(run_dir) -> tuple[Path, pypdf.PdfReader, str]:
    path = build_report(run_dir)
    reader = pypdf.PdfReader(path)
    return path, reader, "\n".join(page.extract_text() for page in reader.pages)


def test_report_opens_with_every_section_in_order(report, run_dir) -> None:
    path, reader, text = report
    assert path.name == "report.pdf"
    assert len(reader.pages) >= 5
    assert [entry.title for entry in reader.outline] == SECTION_TITLES
    for title in SECTION_TITLES:
        assert title in text
    assert "SYNTHESISED from real daily OHLCV" in text
    assert "MODELLED from a volatility surface" in text
    factors = run_dir / "factor_attribution.csv"
    if factors.is_file():  # written by the backtest once factor attribution is wired in
        for name in pd.read_csv(factors)["factor"]:
            assert f"\n{name}\n" in text
    else:
        assert "Factor attribution is not available in this run" in text


def test_metrics_table_shows_metrics_json_beside_the_baseline(report, run_dir) -> None:
    _, _, text = report
    metrics = json.loads((run_dir / "metrics.json").read_text())
    baseline = json.loads((run_dir / "baseline_metrics.json").read_text())
    for key, value in metrics.items():
        shown = format_metric(key, value)
        if is_risk_key(key):  # VaR / CVaR / Monte Carlo: in the risk section, no baseline column
            assert f"{shown}\n" in text, key
            continue
        base = format_metric(key, baseline[key]) if key in baseline else "-"
        assert f"\n{shown}\n{base}\n" in text, key
    # the same numbers formatted independently of format_metric
    net = metrics["net_profit"]
    assert (f"-${abs(net):,.2f}" if net < 0 else f"${net:,.2f}") in text
    assert f"{metrics['win_rate'] * 100:.2f}%" in text
    assert f"{metrics['max_drawdown_pct'] * 100:.2f}%" in text
    assert f"\n{metrics['trades']}\n0\n" in text  # strategy trades beside the baseline's zero


def test_format_metric_hand_worked() -> None:
    assert format_metric("net_profit", -2807.8200000001816) == "-$2,807.82"
    assert format_metric("end_equity", 22192.17999999982) == "$22,192.18"
    assert format_metric("win_rate", 0.5256410256410257) == "52.56%"
    assert format_metric("max_drawdown_pct", -0.11767400000000727) == "-11.77%"
    assert format_metric("sharpe", -2.409773453779119) == "-2.410"
    assert format_metric("trades", 78) == "78"
    assert format_metric("sortino", None) == "n/a"
    assert format_metric("cvar_99", 196.5) == "$196.50"
    assert format_metric("hist_var_95", 84.51350000000237) == "$84.51"
    assert format_metric("mc_final_equity_p5", 24733.4575) == "$24,733.46"
    assert format_metric("mc_final_equity_prob_loss", 0.3042) == "30.42%"


def test_var_levels_table_and_risk_keys() -> None:
    metrics = {"sharpe": 1.0, "hist_var_95": 84.5, "hist_cvar_95": 130.9, "hist_var_99": 161.4, "mc_var_95": 85.2,
               "mc_cvar_99": 196.5, "mc_final_equity_p5": 24733.0}
    table = var_levels(metrics)
    assert list(table.columns) == ["historical VaR", "historical CVaR", "Monte Carlo VaR", "Monte Carlo CVaR"]
    assert list(table.index) == ["95%", "99%"]
    assert table.loc["95%", "historical CVaR"] == 130.9
    assert table.loc["99%", "Monte Carlo CVaR"] == 196.5
    assert math.isnan(table.loc["99%", "historical CVaR"])
    assert [k for k in metrics if is_risk_key(k)] == list(metrics)[1:]
    assert risk_label("mc_final_equity_p5") == "final equity, 5th percentile"
    assert risk_label("mc_final_equity_p1") == "final equity, 1st percentile"


def _optional_charts(folder: Path) -> int:
    """Regime chart when trades carry entry_regime_code, factor chart when factor_attribution.csv exists."""
    trades = pd.read_csv(folder / "trades.csv")
    has_regime = "entry_regime_code" in trades and trades["entry_regime_code"].notna().any()
    return int(has_regime) + int((folder / "factor_attribution.csv").is_file())


def test_every_chart_is_a_nonblank_image(report, run_dir) -> None:
    _, reader, _ = report
    images = [img for page in reader.pages for img in page.images]
    # equity, monthly heatmap, trade P&L, entry/holding, exit reasons, Greeks, daily P&L (+ regimes, factors)
    assert len(images) == 7 + _optional_charts(run_dir)
    for img in images:
        pixels = np.asarray(img.image.convert("L"), dtype=float)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 1000
        assert pixels.std() > 5.0, img.name  # not a blank canvas


def test_rebuild_from_saved_files_gives_same_content(report, run_dir, tmp_path) -> None:
    path, _, text = report
    copy = tmp_path / "copied_run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("report.pdf"))
    rebuilt = build_report(copy)
    assert "\n".join(p.extract_text() for p in pypdf.PdfReader(rebuilt).pages) == text
    assert rebuilt.read_bytes() == path.read_bytes()  # invariant mode: byte-identical
    hidden = sorted(p.name for p in copy.iterdir() if p.name.startswith(".") and p.name != ".quantor-run")
    assert hidden == []  # no temporary file left (.quantor-run marks a run folder)


def test_zero_trade_run_reads_no_trades(tmp_path) -> None:
    folder = _backtest_folder(tmp_path, "zero", "2018-03-01", "2018-03-16",
                              **{"strategy.dte_min": 365, "strategy.dte_max": 365})
    assert (folder / "trades.csv").read_text().strip() == ""
    reader = pypdf.PdfReader(build_report(folder))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert [entry.title for entry in reader.outline] == SECTION_TITLES
    assert text.count("No trades in this run.") == TRADE_SECTIONS_WITHOUT_TRADES
    assert "The book held no options in this run" in text
    assert "no listed expiry with #-# DTE" in text  # why nothing was done, from decisions.log
    assert len([img for page in reader.pages for img in page.images]) == 2  # equity and monthly heatmap


def test_missing_folder_or_file_is_one_line_data_error(run_dir, tmp_path, capsys) -> None:
    with pytest.raises(DataError, match="does not exist") as err:
        run_report_cli(str(tmp_path / "nowhere"))
    assert "\n" not in str(err.value)
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    (broken / "metrics.json").unlink()
    with pytest.raises(DataError, match=r"metrics\.json is missing: rerun the backtest") as err:
        run_report_cli(str(broken))
    assert "\n" not in str(err.value)
    assert run_report_cli(str(run_dir)) == 0
    assert capsys.readouterr().out.strip() == f"report: {run_dir / 'report.pdf'}"


# --------------------------------------------------------------------------- hand-made run folder

HAND_TRADES = pd.DataFrame({
    "position_id": ["P0001", "P0002"], "structure": ["iron_condor"] * 2,
    "entry_time": ["2018-01-02T10:00:00-05:00", "2018-03-09T10:00:00-05:00"],
    "exit_time": ["2018-01-09T09:35:00-05:00", "2018-03-14T16:00:00-04:00"],
    "expiry": ["2018-02-09", "2018-04-20"], "contracts": [1, 2],
    "legs": ["+1P253 -1P258 -1C275 +1C280", "+1P260 -1P265 -1C280 +1C290"],
    "credit": [0.8775, 1.1], "max_loss": [4.1225, 8.9],
    "exit_debit": [2.365, 0.4], "fees": [5.44, 10.88], "option_pnl": [-154.19, 129.12], "share_pnl": [0.0, 0.0],
    "pnl": [-154.19, 129.12],
    "exit_reason": ["stop_loss", "profit_target"], "entry_regime_code": [2, 0],
})


@pytest.fixture
def hand_dir(run_dir, tmp_path) -> Path:
    """Two hand-written trades over three daily closes, with regimes and factor attribution."""
    folder = tmp_path / "hand"
    folder.mkdir()
    for name in ("run.json", "baseline_metrics.json"):
        shutil.copy(run_dir / name, folder / name)
    HAND_TRADES.to_csv(folder / "trades.csv", index=False)
    pd.DataFrame({"timestamp": ["2018-01-31T15:55:00-05:00", "2018-01-31T16:00:00-05:00",
                                "2018-02-28T16:00:00-05:00", "2018-03-01T16:00:00-05:00"],
                  "equity": [25100.0, 25500.0, 24990.0, 25240.0]}).to_csv(folder / "equity.csv", index=False)
    metrics = {"start_cash": 25000.0, "net_profit": 240.0, "trades": 2, "var_95": 300.0, "cvar_95": 510.0}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    pd.DataFrame({"factor": ["vix", "iv_rank"], "mean_win": [14.0, 40.0], "mean_lose": [18.0, 30.0],
                  "delta_f": [-4.0, 10.0], "ci_low": [-6.0, 2.0], "ci_high": [-2.0, 18.0], "n_win": [1, 1],
                  "n_lose": [1, 1]}).to_csv(folder / "factor_attribution.csv", index=False)
    return folder


def test_derived_measures_hand_worked(hand_dir) -> None:
    run = load_run(hand_dir)
    measures = trade_measures(run.trades)
    assert measures["dte"].tolist() == [38.0, 42.0]  # 2018-02-09 - 2018-01-02, 2018-04-20 - 2018-03-09
    assert measures["credit_width"].tolist() == pytest.approx([0.8775 / 5.0, 1.1 / 10.0])
    # 6 d 23 h 35 min; 5 d 5 h across the DST change (10:00 EST -> 16:00 EDT)
    assert measures["held_days"].tolist() == pytest.approx([6 + 23 / 24 + 35 / 1440, 5 + 5 / 24])
    table = monthly_returns(run)
    assert table.loc[2018, 1] == pytest.approx(25500 / 25000 - 1)  # +2.0%
    assert table.loc[2018, 2] == pytest.approx(24990 / 25500 - 1)  # -2.0%
    assert table.loc[2018, 3] == pytest.approx(25240 / 24990 - 1)
    assert math.isnan(table.loc[2018, 4])
    assert daily_pnl(run).tolist() == pytest.approx([500.0, -510.0, 250.0])
    assert regime_names(run.trades["entry_regime_code"]).tolist() == ["BULL_TREND", "LOW_VOL_RANGE"]


def test_hand_folder_report_shows_regimes_factors_and_var(hand_dir) -> None:
    reader = pypdf.PdfReader(build_report(hand_dir, "custom.pdf"))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert (hand_dir / "custom.pdf").is_file()
    for expected in ("BULL_TREND", "LOW_VOL_RANGE", "delta_f", "iv_rank", "\n95%\n$300.00\n$510.00\n",
                     "+1P253 -1P258 -1C275", "-154.19", "129.12", "profit_target"):
        assert expected in text, expected
    # equity, monthly, trade P&L, entry/holding, exits, regimes, factors, daily P&L (no greeks.csv here)
    assert len([img for page in reader.pages for img in page.images]) == 8
    assert "greeks.csv is not in this run folder" in text
    for page in reader.pages:
        for img in page.images:
            assert np.asarray(Image.open(io.BytesIO(img.data)).convert("L"), dtype=float).std() > 5.0


def test_failed_build_leaves_no_half_written_pdf(hand_dir, monkeypatch) -> None:
    import core.outputs.pdf as report_pdf

    def boom(run):
        raise RuntimeError("chart failed")

    monkeypatch.setattr(report_pdf, "report_story", boom)
    with pytest.raises(RuntimeError, match="chart failed"):
        build_report(hand_dir)
    assert sorted(p.name for p in hand_dir.iterdir() if "pdf" in p.name) == []


# --------------------------------------------------------------------------- layout and content rules (issue 12)


def test_layout_keeps_titles_with_content_and_fills_pages(run_dir, tmp_path) -> None:
    """No section title ends a page alone; every page but the last is at least half full."""
    for folder in (run_dir, _backtest_folder(tmp_path, "zero", "2018-03-01", "2018-03-16",
                                             **{"strategy.dte_min": 365, "strategy.dte_max": 365})):
        layout: dict = {}
        build_report(folder, "layout.pdf", layout=layout)
        assert layout["orphans"] == []
        assert len(layout["page_fill"]) >= 3
        assert min(layout["page_fill"][:-1]) >= 0.5, layout["page_fill"]


def test_appendix_shows_the_resolved_dates(report, run_dir) -> None:
    _, _, text = report
    run = json.loads((run_dir / "run.json").read_text())
    assert run["config"]["backtest"]["start"] == "2018-03-01"  # given: shown as given
    hand = run_dir.parent / "default_dates"
    shutil.copytree(run_dir, hand, ignore=shutil.ignore_patterns("report.pdf", ".quantor-run"))
    run["config"]["backtest"].update(start=None, end=None)
    (hand / "run.json").write_text(json.dumps(run))
    rebuilt = "\n".join(p.extract_text() for p in pypdf.PdfReader(build_report(hand)).pages)
    assert "start: null" not in rebuilt and "end: null" not in rebuilt
    first, last = run["data"]["range"]
    assert f'start: "{first} (default: resolved from the data)"' in rebuilt
    assert f'end: "{last} (default: resolved from the data)"' in rebuilt


def test_trades_listed_by_entry_and_regime_shown_per_category(hand_dir) -> None:
    swapped = HAND_TRADES.iloc[::-1]  # a file in exit order: the report still lists by entry
    swapped.to_csv(hand_dir / "trades.csv", index=False)
    factors = pd.read_csv(hand_dir / "factor_attribution.csv")
    regime_row = {"factor": "regime_code", "mean_win": 0.0, "mean_lose": 2.0, "delta_f": -2.0, "ci_low": -3.0,
                  "ci_high": -1.0, "n_win": 1, "n_lose": 1}
    pd.concat([factors, pd.DataFrame([regime_row])]).to_csv(hand_dir / "factor_attribution.csv", index=False)
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(build_report(hand_dir)).pages)
    trades_part = text[text.index("In order of entry"):]
    assert trades_part.index("P0001") < trades_part.index("P0002")
    factor_part = text[text.rindex("Factor attribution"):text.index("In order of entry")]
    assert "\nregime_code\n" not in factor_part  # a category code is never averaged
    assert "regime at entry, per category" in factor_part
    assert "BULL_TREND" in factor_part and "LOW_VOL_RANGE" in factor_part


def test_equity_png_title_names_structure_period_and_result_beside_buy_and_hold(tmp_path) -> None:
    from core.outputs.backtest import chart_title

    cfg = build_config(None, {"backtest.start": "2018-03-01", "backtest.end": "2018-03-29", "run.progress": False})
    result = run_backtest(cfg)
    folder = write_outputs(result, str(tmp_path / "png"))
    metrics = json.loads((folder / "metrics.json").read_text())
    base = json.loads((folder / "baseline_metrics.json").read_text())
    title = chart_title(result, metrics, base)
    net = metrics["net_profit"]
    assert title.startswith("Iron condor on SPY, 2018-03-01 to 2018-03-29: ")
    assert (f"-${abs(net):,.2f}" if net < 0 else f"${net:,.2f}") in title
    assert f"({metrics['total_return'] * 100:+.2f}%)" in title
    assert "buy and hold of the underlying: " in title and f"({base['total_return'] * 100:+.2f}%)" in title
    equity = pd.read_csv(folder / "equity.csv")
    assert equity["buy_hold_equity"].iloc[0] == pytest.approx(cfg.backtest.cash)
    assert equity["buy_hold_equity"].iloc[-1] == pytest.approx(cfg.backtest.cash + base["net_profit"], abs=0.01)
    image = Image.open(folder / "equity.png")
    assert image.size[0] > 800 and np.asarray(image.convert("L"), dtype=float).std() > 5.0


def test_truncated_equity_csv_is_one_line_naming_the_row(run_dir, tmp_path) -> None:
    copy = tmp_path / "truncated"
    shutil.copytree(run_dir, copy)
    text = (copy / "equity.csv").read_text().splitlines()
    (copy / "equity.csv").write_text("\n".join(text[:4] + [text[4].split(",")[0]]) + "\n")
    with pytest.raises(DataError, match=r"equity.csv: line 5 has no valid timestamp and equity"):
        run_report_cli(str(copy))
