"""Whole live sessions against the fake Alpaca: condors opened and closed through decide(), the
stream dropped and reconciled, dry runs, a closed market, a process killed between submit and
ledger write, the kill switch, and no secret in anything the session writes."""

from __future__ import annotations

import json
import time
import types
from collections import Counter
from pathlib import Path

import pytest
from fake_alpaca import FakeAlpaca, advance, condor_market, scale_quotes, seed_bars

from core.broker.alpaca import WalkParams
from core.config import AppConfig
from core.dto import ConfigError
from core.live.cli import check_money, run_live
from core.live.clients import Credentials
from core.live.killswitch import KillParams, KillState
from core.live.loop import LiveOptions, LiveSession

KEY, SECRET = "PKFAKEKEY0123456789", "sEcReT-do-not-write-0987654321"


@pytest.fixture
def fake():
    f = FakeAlpaca(KEY, SECRET).start()
    condor_market(f)
    seed_bars(f)
    yield f
    f.stop()
    assert f.duplicates() == []  # every scenario: no re-sent order, no second fill for a decision


@pytest.fixture
def cfg():
    return AppConfig().with_overrides({"run.progress": False})


def options(fake: FakeAlpaca, out: Path, **kw) -> LiveOptions:
    base = {"out": out, "broker_url": fake.url, "data_url": fake.url, "timeout_s": 0.5, "stream": False,
            "requests_per_minute": 6000.0,
            "walk": WalkParams(wait_s=0.3, poll_s=0.05), "read_backoff_s": 0.01, "console": False,
            "stream_min_backoff": 0.05, "stream_max_backoff": 0.2, "kill": KillParams(kill_file=str(out / "KILL"))}
    base.update(kw)
    return LiveOptions(**base)


def session(cfg, fake, out, lines=None, **kw) -> LiveSession:
    return LiveSession(cfg, options(fake, out, **kw), Credentials(KEY, SECRET),
                       printer=(lines.append if lines is not None else (lambda _s: None)))


def no_duplicates(fake: FakeAlpaca) -> None:
    orders = fake.created_orders()
    assert all(n == 1 for n in Counter(o["client_order_id"] for o in orders).values())
    families = Counter(o["client_order_id"].rsplit("-", 1)[0] for o in orders if o["status"] == "filled")
    assert all(n == 1 for n in families.values()), families


def ledger_equals_broker(s: LiveSession, fake: FakeAlpaca) -> None:
    assert s.ledger.symbol_quantities() == fake.broker_positions()


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_condor_opened_and_closed_across_a_stream_drop(cfg, fake, tmp_path):
    lines: list[str] = []
    s = session(cfg, fake, tmp_path, lines, stream=True)
    s.start()
    try:
        s.cycle()  # 10:00 ET: the entry bar
        assert len(s.broker.open_positions()) == 1, lines
        ledger_equals_broker(s, fake)
        assert s.events is not None
        for _ in range(200):
            if s.events.connected:
                break
            time.sleep(0.02)
        fake.drop_streams()
        advance(fake, 5)
        s.cycle()
        scale_quotes(fake, 0.3)  # the condor is worth 30% of its credit: profit target
        advance(fake, 5)
        for _ in range(200):
            if s.events.connects >= 2:
                break
            time.sleep(0.02)
        s.cycle()
    finally:
        s.close()
    assert s.broker.open_positions() == {}, lines
    ledger_equals_broker(s, fake)
    no_duplicates(fake)
    assert fake.broker_positions() == {}
    assert s.events.connects >= 2 and all(0 < d <= 0.2 for d in s.events.delays)
    assert sum(1 for _, kind, _ in s.ledger.events() if kind == "reconcile") >= 2  # start-up + after reconnect
    assert any(kind == "stream" and "fill" in text for _, kind, text in s.ledger.events())  # stream events recorded
    decisions = read_jsonl(tmp_path / "decisions.jsonl")
    assert [d["action"] for d in decisions if d["action"] in ("enter", "exit")] == ["enter", "exit"]
    closed = s.ledger.positions("closed")
    assert len(closed) == 1 and closed[0]["exit_reason"] == "profit_target" and closed[0]["pnl"] > 0
    status = (tmp_path / "status.log").read_text().splitlines()
    assert len(status) == 3 and all(" ET | SPY " in line for line in status)


def test_once_dry_run_sends_nothing(cfg, fake, tmp_path):
    lines: list[str] = []
    s = session(cfg, fake, tmp_path, lines, once=True, dry_run=True)
    assert s.run() == 0
    assert fake.count("POST", "/v2/orders") == 0
    orders = read_jsonl(tmp_path / "orders.jsonl")
    assert orders and orders[0]["dry_run"] and orders[0]["orders"][0]["legs"]
    assert any("DRY-RUN" in line and "would send" in line for line in lines), lines


def test_closed_market_prints_one_line_and_decides_nothing(cfg, fake, tmp_path):
    fake.state.clock_open = False
    lines: list[str] = []
    assert session(cfg, fake, tmp_path, lines, once=True).run() == 0
    assert any("market closed; next open" in line for line in lines)
    assert not (tmp_path / "decisions.jsonl").exists()


class Killed(BaseException):
    pass


def test_process_killed_between_submit_and_ledger_write_restarts_cleanly(cfg, fake, tmp_path):
    s = session(cfg, fake, tmp_path, once=True)
    real = s.broker.trading

    class KillAfterSubmit:
        def submit_order(self, req):
            real.submit_order(req)
            raise Killed()

        def __getattr__(self, name):
            return getattr(real, name)
    s.broker.trading = KillAfterSubmit()
    with pytest.raises(Killed):
        s.run()
    s.ledger.close()
    assert len(fake.created_orders()) == 1
    # the restart, in the same bar: reconcile resumes the order; the same decision sends nothing new
    lines: list[str] = []
    s2 = session(cfg, fake, tmp_path, lines, once=True)
    assert s2.run() == 0
    assert len(fake.created_orders()) == 1, fake.created_orders()
    assert any("resumed 1" in line for line in lines), lines
    s3 = session(cfg, fake, tmp_path)
    ledger_equals_broker(s3, fake)
    assert len(s3.ledger.open_positions()) == 1
    s3.close()
    # and the next bar too
    advance(fake, 5)
    assert session(cfg, fake, tmp_path, once=True).run() == 0
    no_duplicates(fake)
    assert len(fake.created_orders()) == 1


def test_kill_file_halts_cancels_flattens_and_persists(cfg, fake, tmp_path):
    s = session(cfg, fake, tmp_path, once=True)
    assert s.run() == 0
    assert len(fake.broker_positions()) == 4
    (tmp_path / "KILL").write_text("stop")
    advance(fake, 5)
    lines: list[str] = []
    s2 = session(cfg, fake, tmp_path, lines, once=True, flatten_on_halt=True)
    assert s2.run() == 3
    assert any("KILL SWITCH HALTED" in line for line in lines)
    assert fake.broker_positions() == {}  # flattened
    s3 = session(cfg, fake, tmp_path, once=True)
    assert s3.kill.state is KillState.HALTED  # persisted across the restart
    (tmp_path / "KILL").unlink()
    n = len(fake.created_orders())
    advance(fake, 5)
    assert s3.run() == 3 and len(fake.created_orders()) == n  # still halted: nothing sent
    s4 = session(cfg, fake, tmp_path, once=True, reset_kill_switch=True)
    assert s4.kill.state is KillState.ACTIVE
    s4.close()


def test_orders_per_day_and_stale_quotes_reduce(cfg, fake, tmp_path):
    s = session(cfg, fake, tmp_path, once=True, kill=KillParams(max_orders_per_day=1, kill_file=None))
    assert s.run() == 0
    assert s.kill.state is KillState.REDUCING and s.kill.cause == "orders_per_day"
    # a second session folder on the same account: the broker holds contracts its ledger cannot explain
    s1 = session(cfg, fake, tmp_path / "other", once=True)
    assert s1.run() == 0 and s1.kill.state is KillState.REDUCING and s1.kill.cause == "reconcile"
    assert fake.count("POST", "/v2/orders") == 1


def test_stale_quotes_reduce(cfg, fake, tmp_path):
    out2 = tmp_path / "b"
    with fake.lock:
        for q in fake.state.quotes.values():
            q.ts = fake.state.now.replace(hour=13)
    s2 = session(cfg, fake, out2, once=True, kill=KillParams(stale_after_s=60, kill_file=None))
    assert s2.run() == 0
    assert s2.kill.state is KillState.REDUCING and s2.kill.cause == "stale_data"
    decisions = read_jsonl(out2 / "decisions.jsonl") if (out2 / "decisions.jsonl").exists() else []
    assert all(d["action"] != "enter" or not d["allowed"] for d in decisions)
    assert fake.count("POST", "/v2/orders") == 0


def test_broker_errors_halt(cfg, fake, tmp_path):
    fake.fault("GET", "/v2/", status=503, times=1000)
    s = session(cfg, fake, tmp_path, max_cycles=3, kill=KillParams(max_broker_errors=3, kill_file=None))
    s.sleep = lambda _x: None
    s.start = types.MethodType(lambda self: None, s)  # start-up reconcile would fail the same way
    assert s.run() == 3
    assert s.kill.state is KillState.HALTED and s.kill.cause == "broker_errors"


def test_429_on_reads_is_retried_with_retry_after(cfg, fake, tmp_path):
    fake.fault("GET", "/v2/stocks/bars", status=429, retry_after=0, times=2)
    fake.fault("GET", "/v1beta1/options/snapshots", status=429, times=1)
    s = session(cfg, fake, tmp_path, once=True)
    assert s.run() == 0
    assert len(fake.broker_positions()) == 4


def test_secrets_never_written(cfg, fake, tmp_path, capsys, caplog, monkeypatch):
    import logging

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    args = types.SimpleNamespace(alpaca=True, once=True, broker_url=fake.url, data_url=fake.url, out=str(tmp_path))
    cfg2 = cfg.with_overrides({"run.out": str(tmp_path)})
    assert run_live(cfg2, args) == 0
    fake.fault("POST", "/v2/orders", status=500)
    advance(fake, 5)
    s = session(cfg, fake, tmp_path, stream=True, max_cycles=1)
    s.run()
    assert s.events is not None and s.events.connects >= 1
    captured = capsys.readouterr()
    blobs = [captured.out, captured.err, caplog.text, repr(s.clients), repr(s.clients.credentials)]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "ledger.sqlite" for p in files)
    for p in files:
        blobs.append(p.read_bytes().decode("latin-1"))
    for blob in blobs:
        assert KEY not in blob and SECRET not in blob


def test_real_money_needs_both_switches(cfg):
    args = types.SimpleNamespace(alpaca=True, live_money=True)
    with pytest.raises(ConfigError, match="allow_live_money"):
        check_money(cfg, args)
    with pytest.raises(ConfigError, match="--alpaca"):
        run_live(cfg, types.SimpleNamespace(alpaca=False))


def test_failed_startup_reconciliation_sends_nothing(cfg, fake, tmp_path):
    fake.fault("GET", "/v2/positions", status=503, times=100)
    lines: list[str] = []
    assert session(cfg, fake, tmp_path, lines, once=True).run() == 3
    assert any("start-up reconciliation failed" in line for line in lines)
    assert fake.count("POST", "/v2/orders") == 0


def test_console_view_and_options(cfg, fake, tmp_path):
    lines: list[str] = []
    s = session(cfg, fake, tmp_path, lines, once=True, console=True)
    assert s.run() == 0
    view = next(line for line in lines if "book delta" in line)
    assert "position" in view and "kill switch ACTIVE" in view and "qm-20260302-1000-enter" in view
    from core.live.cli import options_from

    args = types.SimpleNamespace(alpaca=True, once=True, dry_run=True, broker_url="http://127.0.0.1:1", db=None,
                                 flatten_on_halt=True, out=str(tmp_path / "x"))
    o = options_from(cfg, args)
    assert o.paper and o.once and o.dry_run and o.flatten_on_halt and o.broker_url == "http://127.0.0.1:1"
    assert o.kill.kill_file == str(tmp_path / "x" / "KILL")
    assert options_from(cfg, types.SimpleNamespace(alpaca=True)).out.as_posix().endswith("reports/live/paper")


def test_fill_event_that_never_arrives_is_found_by_polling(cfg, fake, tmp_path):
    fake.state.suppress_events = True
    s = session(cfg, fake, tmp_path, stream=True)
    s.start()
    try:
        for _ in range(200):
            if s.events is not None and s.events.connected:
                break
            time.sleep(0.02)
        assert s.events is not None and s.events.connected
        s.cycle()
    finally:
        s.close()
    assert fake.state.events_sent == 0
    assert len(fake.broker_positions()) == 4
    ledger_equals_broker(s, fake)


def test_roll_closes_then_opens_the_replacement(cfg, fake, tmp_path):
    import dataclasses
    import datetime as dt

    from fake_alpaca import condor_legs

    from core.dto import Action, ExitReason, Structure, TradeDecision

    s = session(cfg, fake, tmp_path)
    s.start()
    try:
        s.cycle()  # the 10:00 entry
        (pid, pos), = s.broker.open_positions().items()
        advance(fake, 5)
        inputs, quotes = s._inputs(fake.state.now, fake.state.now.replace(hour=21), 5)
        s.broker.set_market(inputs.ts, {k: (q.bid, q.ask) for k, q in quotes.items()}, inputs.cash, 1e6)
        expiry = fake.state.now.date() + dt.timedelta(days=35)
        new_legs = condor_legs(expiry, (465, 475, 535, 545))
        roll = TradeDecision(Action.ROLL, Structure.IRON_CONDOR, new_legs, pos.qty, ("dte roll",),
                             exit_reason=ExitReason.DTE_EXIT, position_id=pid)
        text = s._execute(dataclasses.replace(inputs), roll)
    finally:
        s.close()
    assert "filled" in text and "; ROLL" in text, text
    held = s.broker.open_positions()
    assert pid not in held and len(held) == 1
    new = next(iter(held.values()))
    assert sorted(leg.contract.strike for leg in new.legs) == [465, 475, 535, 545]
    ledger_equals_broker(s, fake)
    assert {o["decision_id"].rsplit("-", 1)[-1] for o in s.ledger.orders() if "-roll-" in o["decision_id"]} == \
        {"c", "o"}


def test_config_keys_and_live_section(fake, tmp_path, monkeypatch, capsys):
    from core.config import build_config
    from core.live.cli import options_from

    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    cfg = build_config({"run": {"progress": False}, "live": {
        "api_key_id": KEY, "api_secret_key": SECRET, "broker_url": fake.url, "data_url": fake.url,
        "timeout_s": 0.5, "step_wait_s": 0.3, "poll_s": 0.05, "requests_per_minute": 200, "limit_edge": 0.07,
        "read_backoff_s": 0.01, "once": True}}, {}, source="test")
    assert KEY not in cfg.model_dump_json() and SECRET not in repr(cfg)
    o = options_from(cfg, types.SimpleNamespace(alpaca=True, out=str(tmp_path)))
    assert o.walk.edge == 0.07 and o.once and o.broker_url == fake.url
    assert run_live(cfg, types.SimpleNamespace(alpaca=True, out=str(tmp_path))) == 0
    assert len(fake.broker_positions()) == 4
    out = capsys.readouterr().out
    for p in [p for p in tmp_path.rglob("*") if p.is_file()]:
        blob = p.read_bytes().decode("latin-1")
        assert KEY not in blob and SECRET not in blob
    assert KEY not in out and SECRET not in out
