"""The live mode as a real process: SIGKILL between "order sent" and "ledger written", then a
restart that resumes without sending again; SIGTERM halts the session and the halt persists."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_alpaca import FakeAlpaca, condor_market, seed_bars

ROOT = Path(__file__).resolve().parents[1]
RUNNER = """
import sys, types
sys.path.insert(0, {root!r})
from core.config import AppConfig
from core.live.cli import run_live
args = types.SimpleNamespace(alpaca=True, once={once}, broker_url={url!r}, data_url={url!r}, out={out!r})
sys.exit(run_live(AppConfig().with_overrides({{"run.progress": False}}), args))
"""


@pytest.fixture
def fake():
    f = FakeAlpaca().start()
    condor_market(f)
    seed_bars(f)
    yield f
    f.stop()
    assert f.duplicates() == []  # every scenario: no re-sent order, no second fill for a decision


def spawn(fake: FakeAlpaca, out: Path, once: bool) -> subprocess.Popen:
    env = {**os.environ, "APCA_API_KEY_ID": fake.key, "APCA_API_SECRET_KEY": fake.secret}
    code = RUNNER.format(root=str(ROOT), once=once, url=fake.url, out=str(out))
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def wait_for(cond, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_sigkill_between_submit_and_ledger_write_then_restart(fake, tmp_path):
    fake.fault("POST", "/v2/orders", hang=30.0)  # the order is accepted; the answer never comes back in time
    proc = spawn(fake, tmp_path, once=True)
    try:
        wait_for(lambda: len(fake.created_orders()) == 1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    fake.state.faults.clear()
    restart = spawn(fake, tmp_path, once=True)
    out, _ = restart.communicate(timeout=60)
    assert restart.returncode == 0, out
    assert "resumed 1" in out, out
    assert len(fake.created_orders()) == 1  # nothing sent again
    from core.live.ledger import Ledger

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    assert ledger.symbol_quantities() == fake.broker_positions() and len(fake.broker_positions()) == 4
    ledger.close()


def test_sigterm_halts_and_the_halt_persists(fake, tmp_path):
    proc = spawn(fake, tmp_path, once=False)
    try:
        wait_for(lambda: (tmp_path / "status.log").exists() and fake.state.stream_connects >= 1)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "KILL SWITCH HALTED" in out, out
    from core.live.ledger import Ledger

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    state = json.loads(ledger.get("killswitch") or "{}")
    ledger.close()
    assert state["state"] == "HALTED" and state["cause"] == "signal"
