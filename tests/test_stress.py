"""Stress mode: scenario revaluation of a condor / open book, historical replay, sensitivity, report files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from core.backtest.run import run_backtest
from core.config import build_config
from core.dto import ConfigError, DataError
from core.outputs.backtest import trades_frame
from core.stress.run import SENSITIVITY_PARAMS, ParamStep, field_limits, run_stress
from risk.scenarios import OptionBook, Scenario, revalue

TWO_MONTHS = {"run.progress": False, "run.no_plot": True, "backtest.start": "2018-02-01", "backtest.end": "2018-03-31"}
WINDOWS = {"Oct 2008": ("2008-10-01", "2008-10-31"), "Feb 2018": ("2018-02-01", "2018-02-28")}


@pytest.fixture(scope="module")
def condor_report(tmp_path_factory):
    """Standard condor at the close of the default range's last session (2018-12-31), no backtests."""
    cfg = build_config({}, {"run.progress": False, "run.no_plot": True})
    return run_stress(cfg, out_dir=tmp_path_factory.mktemp("std") / "stress", windows={}, sensitivity=False)


@pytest.fixture(scope="module")
def book_report(tmp_path_factory):
    """Open positions on 2018-03-15 of a run from 2018-02-01; two short windows; full sensitivity."""
    cfg = build_config({}, TWO_MONTHS)
    return cfg, run_stress(cfg, as_of="2018-03-15", out_dir=tmp_path_factory.mktemp("book") / "stress",
                           windows=WINDOWS)


def _scenarios(report) -> pd.DataFrame:
    return pd.DataFrame(report["scenarios"]).set_index("scenario")


def test_standard_condor_is_16_delta_30_45_dte_with_5_wings(condor_report):
    port = condor_report["portfolio"]
    assert port["kind"] == "standard_condor"
    assert port["as_of"] == "2018-12-31"
    (pos,) = port["positions"]
    assert 30 <= (dt.date.fromisoformat(pos["expiry"]) - dt.date(2018, 12, 31)).days <= 45
    assert pos["put_width"] == 5.0 and pos["call_width"] == 5.0
    assert pos["long_put"] < pos["short_put"] < port["spot"] < pos["short_call"] < pos["long_call"]
    # hand-worked bound: (put width - credit) x 100 x contracts
    assert pos["max_loss_bound"] == pytest.approx((pos["put_width"] - pos["credit"]) * 100 * pos["contracts"])
    assert port["max_loss_bound"] == pytest.approx(pos["max_loss_bound"])


def test_condor_never_loses_more_than_its_max_loss_bound(condor_report):
    table = _scenarios(condor_report)
    bound = condor_report["portfolio"]["max_loss_bound"]
    crash = table.loc["flash_crash_-10%"]
    assert crash["max_loss_bound"] == pytest.approx(bound)
    assert crash["pnl_full"] < 0
    assert crash["pnl_full"] >= -bound and crash["pnl_from_entry"] >= -bound
    assert table["within_bound"].all()


def test_bound_holds_and_is_nearly_reached_in_a_deep_crash(condor_report):
    """At -40% the put spread is deep in the money: worth ~ width e^{-r tau} < width, so the loss
    from entry approaches but never exceeds (width - credit) x 100."""
    port = condor_report["portfolio"]
    (pos,) = port["positions"]
    strikes = [pos["long_put"], pos["short_put"], pos["short_call"], pos["long_call"]]
    tau = (dt.date.fromisoformat(pos["expiry"]) - dt.date(2018, 12, 31)).days / 365.0
    book = OptionBook(port["spot"], strikes, [tau] * 4, [False, False, True, True], [1, -1, -1, 1],
                      [0.30, 0.28, 0.18, 0.18], r=port["rate"], q=port["dividend_yield"])
    row = revalue(book, [Scenario("crash_-40%", spot_return=-0.40)]).iloc[0]
    loss_from_entry = row["value_new"] + pos["credit"] * 100
    assert -port["max_loss_bound"] <= loss_from_entry < -0.95 * port["max_loss_bound"]


def test_approximation_error_is_reported_and_small_for_5pct_gaps(condor_report):
    table = _scenarios(condor_report)
    assert (table["approx_error"] == table["pnl_approx"] - table["pnl_full"]).all()
    crash_err = abs(table.loc["flash_crash_-10%", "approx_error"])
    assert crash_err > 1.0  # higher-order terms matter at -10%
    for gap in ("gap_down_-5%", "gap_up_+5%"):
        assert abs(table.loc[gap, "approx_error"]) < 0.25 * crash_err
    # IV scenarios: no spot move, so the whole approximation is the vega term
    vix = table.loc["vix_50_steep_skew"]
    assert vix["pnl_delta"] == 0 and vix["pnl_approx"] == pytest.approx(vix["pnl_vega"])
    assert table.loc["vol_crush_-30%", "pnl_full"] > 0  # a short-vega book gains when vol falls


def test_open_positions_at_a_date_are_captured_and_revalued(book_report):
    cfg, report = book_report
    port = report["portfolio"]
    assert port["kind"] == "open_positions" and port["as_of"] == "2018-03-15"
    assert len(port["positions"]) > 0
    # independent truth: a longer run holds exactly these positions across the 2018-03-15 close
    trades = trades_frame(run_backtest(cfg, progress=False).driver.broker.closed)
    close = pd.Timestamp("2018-03-15 16:00", tz="America/New_York")
    held = trades[(pd.to_datetime(trades["entry_time"], utc=True) <= close)
                  & (pd.to_datetime(trades["exit_time"], utc=True) > close)]
    got = sorted((p["opened_at"], f"-1P{p['short_put']:g}", f"-1C{p['short_call']:g}") for p in port["positions"])
    want = sorted((e, *(leg for leg in legs.split() if leg.startswith("-"))) for e, legs in
                  zip(held["entry_time"], held["legs"], strict=True))
    assert got == want
    bound = sum((max(p["put_width"], p["call_width"]) - p["credit"]) * 100 * p["contracts"]
                for p in port["positions"])
    table = _scenarios(report)
    assert table["max_loss_bound"].iloc[0] == pytest.approx(bound)
    assert (table["pnl_from_entry"] >= -bound).all()
    assert len(table) == 5 and table["pnl_full"].notna().all()


def test_historical_replay_flags_proxy_vix_before_2014(book_report):
    cfg, report = book_report
    rows = {r["window"]: r for r in report["historical"]}
    assert rows["Oct 2008"]["vix_proxy"] is True and rows["Oct 2008"]["status"] == "ok"
    assert rows["Oct 2008"]["vix_max"] > 50  # October 2008: VIX (proxy) far above the entry gate
    feb = rows["Feb 2018"]
    assert feb["vix_proxy"] is False and feb["intraday_synthetic"] is True
    assert feb["vix_max"] == pytest.approx(37.32)  # real VIX close on 2018-02-05
    window_cfg = cfg.with_overrides({"backtest.start": "2018-02-01", "backtest.end": "2018-02-28"})
    trades = trades_frame(run_backtest(window_cfg, progress=False).driver.broker.closed)
    assert feb["trades"] == len(trades)
    assert feb["net_profit"] == pytest.approx(trades["pnl"].sum(), abs=1e-6)  # flat at the end of the window
    assert feb["worst_trade"] == pytest.approx(trades["pnl"].min())


def test_window_outside_the_data_is_skipped_not_fatal(tmp_path):
    cfg = build_config({}, TWO_MONTHS)
    report = run_stress(cfg, out_dir=tmp_path / "s", windows={"1990": ("1990-01-02", "1990-02-01")},
                        sensitivity=False)
    (row,) = report["historical"]
    assert row["status"].startswith("skipped: --bt-start 1990-01-02 is outside")


def test_sensitivity_rows_for_every_parameter_both_directions(book_report):
    cfg, report = book_report
    rows = report["sensitivity"]
    assert rows[0]["parameter"] == "base"
    pairs = {(r["parameter"], r["direction"]): r for r in rows[1:]}
    assert set(pairs) == {(p.path, d) for p in SENSITIVITY_PARAMS for d in ("down", "up")}
    assert pairs[("exits.profit_pct", "up")]["value"] == pytest.approx(0.6)
    assert pairs[("exits.max_hold_days", "down")]["value"] == 10
    assert pairs[("exits.max_hold_days", "up")]["value"] == 21
    # 5 - 5 = 0 is not a wing (> 0): clamped half way to the exclusive bound
    assert pairs[("strategy.wing_min", "down")]["value"] == pytest.approx(2.5)
    ran = [r for r in rows if r["status"] == "ok" or r["status"].startswith("no trades")]
    assert len(ran) == 1 + 2 * len(SENSITIVITY_PARAMS)
    for r in ran:  # a run without trades is marked and carries no change (never a gain)
        assert (r["trades"] == 0) == r["status"].startswith("no trades")
        if r["trades"] == 0:
            assert r.get("net_profit_change") is None
    # shared inputs/features give the same result as a fresh run with the override
    fresh = run_backtest(cfg.with_overrides({"exits.max_hold_days": 21}), progress=False)
    assert pairs[("exits.max_hold_days", "up")]["trades"] == len(fresh.driver.broker.closed)
    assert pairs[("exits.max_hold_days", "up")]["net_profit"] == pytest.approx(
        fresh.driver.rec.equity[-1] - cfg.backtest.cash, abs=1e-6)


def test_param_step_neighbours():
    assert ParamStep("x", grid=(10, 14, 21, 30)).neighbours(14) == {"down": 10, "up": 21}
    assert ParamStep("x", grid=(10, 14, 21, 30)).neighbours(30) == {"down": 21, "up": 39}
    assert ParamStep("x", grid=(0.10, 0.12, 0.15)).neighbours(0.10) == {"down": 0.08, "up": 0.12}
    assert ParamStep("x", grid=(5, 10)).neighbours(5.0) == {"down": 0.0, "up": 10.0}
    assert ParamStep("x", step=0.5).neighbours(1.5) == {"down": 1.0, "up": 2.0}


def test_param_steps_are_clamped_into_the_allowed_range():
    profit = field_limits("exits.profit_pct")  # > 0, <= 1
    assert (profit.low, profit.low_inclusive, profit.high, profit.high_inclusive) == (0.0, False, 1.0, True)
    assert ParamStep("exits.profit_pct", step=0.10).neighbours(0.95, profit) == {"down": 0.85, "up": 1.0}
    assert ParamStep("exits.profit_pct", step=0.10).neighbours(1.0, profit) == {"down": 0.9, "up": 1.0}
    assert ParamStep("x", step=0.10).neighbours(0.05, profit)["down"] == pytest.approx(0.025)  # half way to > 0
    hold = field_limits("exits.max_hold_days")  # >= 1, <= 365
    assert ParamStep("x", grid=(10, 14, 21, 30)).neighbours(360, hold) == {"down": 30, "up": 365}
    assert ParamStep("x", step=5).neighbours(3, hold) == {"down": 1, "up": 8}


def test_sensitivity_marks_zero_trade_runs_and_limit_steps(tmp_path, capsys):
    """With --vix-max 1 nothing trades: every row says so, no change is reported, nothing is plotted as a gain;
    a step already at its limit is skipped; progress is one labelled line per step."""
    cfg = build_config({}, {**TWO_MONTHS, "filters.vix_max": 1.0, "exits.profit_pct": 1.0, "run.progress": True})
    report = run_stress(cfg, out_dir=tmp_path / "z", progress=True, windows={"Feb 2018": WINDOWS["Feb 2018"]},
                        sensitivity_params=["profit_pct"])
    rows = {(r["parameter"], r["direction"]): r for r in report["sensitivity"]}
    assert rows[("base", "base")]["status"].startswith("no trades: the entry was skipped")
    assert "vix_high" in rows[("base", "base")]["status"]
    assert rows[("exits.profit_pct", "down")]["status"].startswith("no trades")
    assert rows[("exits.profit_pct", "down")]["net_profit_change"] is None
    assert rows[("exits.profit_pct", "up")]["status"].startswith("skipped: already at the allowed limit")
    from core.outputs.report_extra import tornado_png
    assert tornado_png(report["sensitivity"]) is None  # no change to draw at all
    err = capsys.readouterr().err.splitlines()
    labels = [line.split("] ", 1)[1] for line in err]
    assert "window 1/1: Feb 2018 (2018-02-01 to 2018-02-28)" in labels
    assert [x.split(":")[0] for x in labels if x.startswith("sensitivity")] == ["sensitivity 1/3", "sensitivity 2/3",
                                                                                 "sensitivity 3/3"]
    assert not any("\r" in line or "it/s" in line for line in err)  # lines, not progress bars


def test_stress_writes_both_report_files(book_report):
    _, report = book_report
    folder = Path(report["out_dir"])
    assert sorted(p.name for p in folder.iterdir() if p.name != ".quantor-run") == [
        "stress_report.csv", "stress_report.json", "stress_report.pdf"]
    assert not list(folder.parent.glob(f".{folder.name}.tmp*"))
    table = pd.read_csv(folder / "stress_report.csv")
    assert list(table.columns) == ["section", "name", "metric", "value"]
    assert set(table["section"]) == {"portfolio", "scenarios", "historical", "sensitivity", "data_flags"}
    crash = table[(table["section"] == "scenarios") & (table["name"] == "flash_crash_-10%")]
    assert {"pnl_full", "pnl_approx", "approx_error", "max_loss_bound"} <= set(crash["metric"])
    payload = json.loads((folder / "stress_report.json").read_text())
    assert {"run", "portfolio", "scenarios", "historical", "sensitivity", "data_flags"} <= set(payload)
    assert payload["data_flags"]["vix_proxy_until"] == "2014-01-02"
    assert payload["scenarios"] == report["scenarios"]


def test_user_errors_are_one_line(tmp_path):
    cfg = build_config({}, TWO_MONTHS)
    with pytest.raises(ConfigError, match="--as-of 'March 15'"):
        run_stress(cfg, as_of="March 15", out_dir=tmp_path / "a", windows={}, sensitivity=False)
    with pytest.raises(DataError, match="--as-of 2030-01-02 is outside"):
        run_stress(cfg, as_of="2030-01-02", out_dir=tmp_path / "b", windows={}, sensitivity=False)
    with pytest.raises(ConfigError, match="sensitivity parameter 'gamma'"):
        run_stress(cfg, out_dir=tmp_path / "c", windows={}, sensitivity_params=["gamma"])


def test_console_tables_fit_80_columns(book_report):
    import io

    from rich.console import Console

    from core.stress.report import print_report

    _, report = book_report
    buffer = io.StringIO()
    print_report(report, Console(width=80, file=buffer, color_system=None))
    lines = buffer.getvalue().splitlines()
    table_lines = [line for line in lines if not line.startswith(("  ", "note:", "report:"))]
    assert max(len(line) for line in table_lines) <= 80
    for r in report["sensitivity"][1:]:  # one line per row: the step text is never wrapped
        step = f"{r['parameter'].split('.')[-1]} {r['base_value']:g}->{r['value']:g}"
        assert any(line.lstrip().startswith(step) for line in lines), step
    assert lines[-1] == f"report: {Path(report['out_dir']) / 'stress_report.pdf'}"
