"""The event gate through the engine: with ``gates.event_blackout_sessions = 1`` no position opens
on a scheduled FOMC/CPI day or the session before it, and the skips name the event."""

from __future__ import annotations

import datetime as dt

from core.backtest.run import run_backtest
from core.config import build_config
from core.dto import Action
from data_factory.calendar import sessions
from data_factory.events import event_days


def test_no_entry_in_the_blackout_and_the_skip_names_the_event() -> None:
    cfg = build_config(None, {"backtest.start": "2018-01-02", "backtest.end": "2018-04-30", "run.progress": False,
                              "run.no_plot": True, "gates.event_blackout_sessions": 1})
    res = run_backtest(cfg)
    days = [d.date() for d in sessions("2018-01-02", "2018-05-31")]
    events = [d for d in event_days(("fomc", "cpi")) if days[0] <= d <= days[-1]]
    blocked = set()
    for e in events:
        i = next(k for k, d in enumerate(days) if d >= e)
        blocked |= {days[i], days[max(i - 1, 0)]}
    opened = {t.position.opened_at.date() for t in res.driver.broker.closed}
    assert opened and not opened & blocked
    skips = [r for r in res.driver.recorder.records if r.action is Action.SKIP and "event" in r.text]
    # every event skip falls in a blackout (a blackout day may skip earlier for another gate: full book, VIX)
    assert skips and {r.ts.date() for r in skips} <= {d for d in blocked if d <= dt.date(2018, 4, 30)}
    assert all(("cpi" in r.text) or ("fomc" in r.text) for r in skips)


def test_a_second_underlying_runs_end_to_end_on_the_embedded_qqq_proxy() -> None:
    cfg = build_config(None, {"backtest.start": "2018-01-02", "backtest.end": "2018-02-28", "run.progress": False,
                              "run.no_plot": True, "strategy.underlying": "QQQ"})
    res = run_backtest(cfg)
    assert res.inputs.info.underlying == "QQQ"
    assert any("nasdaq" in n for n in res.inputs.info.notes)  # a NASDAQ Composite proxy, said so
    closed = res.driver.broker.closed
    assert closed and all(leg.contract.underlying == "QQQ" for t in closed for leg in t.position.legs)
    spot = float(res.inputs.bars["close"].iloc[-1])
    assert all(abs(leg.contract.strike / spot - 1) < 0.2 for t in closed for leg in t.position.legs)


def test_events_are_drawn_on_the_equity_chart() -> None:
    import pandas as pd

    from core.outputs.charts import equity_figure
    from data_factory.events import event_frame

    ts = pd.date_range("2018-01-02 15:00", "2018-03-30 20:00", freq="1D", tz="UTC")
    equity = pd.DataFrame({"timestamp": [t.isoformat() for t in ts], "equity": 25_000.0})
    events = event_frame(dt.date(2018, 1, 2), dt.date(2018, 3, 30), ("fomc", "cpi"))
    fig = equity_figure(equity, "t", events)
    top = fig.axes[0]
    labels = {t.get_text() for t in top.get_legend().get_texts()}
    assert {"FOMC day", "CPI day"} <= labels
    assert len(top.lines) == 1 + len(events)  # the equity line plus one line per event


def test_selector_comparison_page(tmp_path) -> None:
    import json

    import pypdf

    from core.outputs.comparison import compare

    cfg = build_config(None, {"backtest.start": "2018-01-02", "backtest.end": "2018-03-30", "run.no_plot": True})
    got = compare(cfg, tmp_path / "cmp")
    pdf = pypdf.PdfReader(tmp_path / "cmp" / "comparison.pdf")
    assert len(pdf.pages) == 1
    text = pdf.pages[0].extract_text()
    assert "plain iron condor" in text and "regime selector" in text and "iron_condor" in text
    saved = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert saved["plain"]["metrics"]["trades"] == got["plain"]["metrics"]["trades"] > 0
    from core.dto import Structure

    assert set(saved["selector"]["by_structure"]) <= {s.value for s in Structure}


def test_a_vendor_underlying_with_its_own_config_runs_end_to_end(tmp_path) -> None:
    """IWM from vendor files (here: an export relabelled) with its dividend yield and strike steps
    taken from ``data.underlyings``."""
    import pandas as pd

    from core.main import main
    from data_factory.listing import strike_grid

    exp = tmp_path / "exp"
    assert main(["--mode", "data", "export", "--start", "2018-03-01", "--end", "2018-03-16", "--out", str(exp),
                 "--no-progress"]) == 0
    chain = pd.read_parquet(exp / "SPY_chains.parquet")
    chain["underlying_symbol"] = "IWM"
    chain.to_parquet(tmp_path / "iwm_chain.parquet", index=False)
    cfg_file = tmp_path / "iwm.toml"
    cfg_file.write_text("[data.underlyings.IWM]\ndividend_yield = 0.013\nstrike_step = 0.5\nstrike_step_far = 2.5\n"
                        "chain_max_lag_seconds = 86400\n")  # the export's snapshots are a few a day
    cfg = build_config(None, {"data.spot_data": str(exp / "SPY_bars_5min.csv"),
                              "data.options_data": str(tmp_path / "iwm_chain.parquet"), "strategy.underlying": "IWM",
                              "data.underlyings": {"IWM": {"dividend_yield": 0.013, "strike_step": 0.5,
                                                           "strike_step_far": 2.5, "chain_max_lag_seconds": 86400}}})
    assert cfg.data.for_underlying("IWM") == ((0.5, 2.5), 0.013, 86400)
    assert cfg.data.for_underlying("SPY")[1] == 0.018 and cfg.data.for_underlying("XYZ")[0] == (1.0, 5.0)
    rc = main(["--mode", "backtest", "--config", str(cfg_file), "--underlying", "IWM", "--spot-data",
               str(exp / "SPY_bars_5min.csv"), "--options-data", str(tmp_path / "iwm_chain.parquet"),
               "--bt-start", "2018-03-05", "--bt-end", "2018-03-16", "--no-plot", "--no-progress",
               "--out", str(tmp_path / "run")])
    assert rc == 0
    grid = strike_grid(150.0, 0.5, 2.5)
    assert 149.5 in grid and 150.5 in grid and 80.0 in grid and 81.0 not in grid
    assert "IWM" in (tmp_path / "run" / "run.json").read_text()
