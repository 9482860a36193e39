"""A recorded live session replays through the decision core to identical decisions; the session
report reads the folder; assignments from account activities reach the ledger."""

from __future__ import annotations

import json

import pytest
from fake_alpaca import FakeAlpaca, advance, condor_market, scale_quotes, seed_bars

from core.broker.alpaca import WalkParams
from core.config import AppConfig
from core.live.cli import run_report
from core.live.clients import Credentials
from core.live.killswitch import KillParams
from core.live.loop import LiveOptions, LiveSession
from core.live.replay import replay_session


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A session of six bars: an entry at 10:00, holds, a profit-target exit, plus a restart."""
    fake = FakeAlpaca().start()
    condor_market(fake)
    seed_bars(fake)
    out = tmp_path_factory.mktemp("session")
    cfg = AppConfig().with_overrides({"run.progress": False})

    def new_session() -> LiveSession:
        return LiveSession(cfg, LiveOptions(out=out, broker_url=fake.url, data_url=fake.url, timeout_s=0.5,
                                            stream=False, walk=WalkParams(wait_s=0.3, poll_s=0.05),
                                            requests_per_minute=6000.0,
                                            read_backoff_s=0.01, console=False, kill=KillParams(kill_file=None)),
                           Credentials(fake.key, fake.secret), printer=lambda _s: None)
    s = new_session()
    s.start()
    for k in range(4):
        s.cycle()
        s.cycles += 1
        advance(fake, 5)
        if k == 2:
            scale_quotes(fake, 0.3)
    s.close()
    s2 = new_session()  # a restart
    s2.start()
    s2.cycle()
    s2.close()
    yield out, cfg, fake
    fake.stop()


def test_replay_gives_identical_decisions(recorded):
    out, cfg, _ = recorded
    result = replay_session(out, cfg)
    assert result.cycles == 5 and result.decisions >= 2
    assert result.identical, result.differences
    actions = [json.loads(line)["action"] for line in (out / "decisions.jsonl").read_text().splitlines()]
    assert "enter" in actions and "exit" in actions


def test_replay_notices_a_different_config(recorded):
    out, cfg, _ = recorded
    other = cfg.with_overrides({"exits.profit_pct": 0.9, "strategy.delta_high": 0.12, "strategy.delta_low": 0.11})
    assert not replay_session(out, other).identical


def test_session_report(recorded):
    out, _, fake = recorded
    lines: list[str] = []
    assert run_report(str(out), printer=lines.append) == 0
    report = json.loads((out / "session_report.json").read_text())
    assert report["decisions"]["by_action"]["enter"] == 1 and report["decisions"]["by_action"]["exit"] == 1
    assert len(report["positions_closed"]) == 1 and report["realized_pnl"] == pytest.approx(
        report["positions_closed"][0]["pnl"])
    entry = [o for o in report["orders"] if o["action"] == "enter"][0]
    assert entry["slippage_per_share"] is not None and entry["slippage_per_share"] <= 0.0
    assert report["broker_orders"] == len(fake.created_orders())
    md = (out / "session_report.md").read_text()
    assert "## Orders" in md and "realized P&L" in md


def test_assignment_activity_closes_the_position_in_the_ledger(tmp_path):
    fake = FakeAlpaca().start()
    try:
        condor_market(fake)
        seed_bars(fake)
        cfg = AppConfig().with_overrides({"run.progress": False})
        opts = LiveOptions(out=tmp_path, broker_url=fake.url, data_url=fake.url, timeout_s=0.5, stream=False,
                           requests_per_minute=6000.0,
                           walk=WalkParams(wait_s=0.3, poll_s=0.05), read_backoff_s=0.01, console=False, once=True,
                           kill=KillParams(kill_file=None))
        s = LiveSession(cfg, opts, Credentials(fake.key, fake.secret), printer=lambda _s: None)
        assert s.run() == 0 and len(fake.broker_positions()) == 4
        short_put = next(sym for sym, q in fake.broker_positions().items() if "P" in sym[-9:] and q < 0)
        with fake.lock:  # the short put is assigned overnight: the broker no longer holds the condor's put side
            for sym in list(fake.state.positions):
                if sym[-9] == "P":
                    fake.state.positions[sym]["qty"] = 0.0
            fake.state.activities.append({"id": "act-1", "activity_type": "OPASN", "symbol": short_put, "qty": "1",
                                          "date": "2026-03-03"})
            fake.state.activities.append({"id": "act-2", "activity_type": "OPTRD", "symbol": "SPY", "qty": "100",
                                          "date": "2026-03-03"})
        lines: list[str] = []
        s2 = LiveSession(cfg, opts, Credentials(fake.key, fake.secret), printer=lines.append)
        s2.start()
        s2.close()
        assert {a["type"] for a in s2.ledger.activities()} == {"OPASN", "OPTRD"}
        assert s2.ledger.open_positions() == {}
        assert s2.ledger.positions("closed_external")
        assert any("account activities" in line for line in lines)
    finally:
        fake.stop()


def test_live_features_equal_batch_features_over_the_whole_session(recorded):
    """The features the loop recorded at each bar equal one batch pass over all the session's bars."""
    import datetime as dt

    import numpy as np

    from core.broker.alpaca_http import RetryPolicy
    from core.dto import FEATURE_NAMES
    from core.live.clients import RateLimiter, endpoints, make_clients
    from core.live.data import NY, LiveData, RollingFeatures, vix_proxy

    out, cfg, fake = recorded
    cycles = [json.loads(line) for line in (out / "cycles.jsonl").read_text().splitlines()]
    clients = make_clients(Credentials(fake.key, fake.secret), endpoints(True, fake.url, fake.url), 0.5,
                           limiter=RateLimiter(6000, burst=100))
    data = LiveData(clients, "SPY", RetryPolicy(attempts=2, base=0.01))
    first = dt.datetime.fromisoformat(cycles[0]["ts"]).astimezone(NY)
    anchor = dt.datetime.combine(first.date() - dt.timedelta(days=10), dt.time(), NY)
    last = dt.datetime.fromisoformat(cycles[-1]["ts"])
    bars = data.bars(anchor.astimezone(dt.UTC), last.astimezone(dt.UTC))
    bars = bars[bars.index <= last]
    daily = data.daily(first.date() - dt.timedelta(days=400), first.date())
    vix_daily = vix_proxy(daily)
    prev = float(vix_daily["vix"].to_numpy(float)[-2])
    vix_intraday = np.full(len(bars), prev)
    stamps = [dt.datetime.fromisoformat(c["ts"]) for c in cycles]
    for c, ts in zip(cycles, stamps, strict=True):
        vix_intraday[bars.index.get_loc(ts)] = c["extra"]["atm_iv"] * 100
    batch = RollingFeatures(cfg).compute(bars, daily, vix_daily, vix_intraday)
    for c, ts in zip(cycles, stamps, strict=True):
        want = batch.values_at(bars.index.get_loc(ts))
        for name in FEATURE_NAMES:
            got = float(c["features"][name])
            assert got == want[name] or (np.isnan(got) and np.isnan(want[name])), (c["ts"], name, got, want[name])
