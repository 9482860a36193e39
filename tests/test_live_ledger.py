"""The crash-safe ledger and reconciliation, on SQLite and on a throw-away PostgreSQL server.

The PostgreSQL run starts ``initdb`` / ``pg_ctl`` from the operating system's packages on
127.0.0.1 in a temporary folder; without the binaries those cases are skipped with the reason.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections import Counter
from pathlib import Path

import pytest
from fake_alpaca import FakeAlpaca, condor_legs, condor_market, make_broker

from core.broker.protocol import OrderRequest, OrderStatus
from core.dto import OrderIntent, Structure
from core.live.ledger import Ledger
from core.live.reconcile import reconcile


def _pg_bin() -> Path | None:
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(cand, "initdb").exists() and Path(cand, "pg_ctl").exists():
            return Path(cand)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@pytest.fixture(scope="module")
def pg_server():
    """A PostgreSQL server on 127.0.0.1 for this module; yields a connection URL prefix."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL run skipped: no initdb/pg_ctl binaries (install postgresql, see .ci/run)")
    base = Path(tempfile.mkdtemp(prefix="quantor-pg-"))  # not under pytest's 0700 folder: postgres must enter it
    data = base / "data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    as_root = os.geteuid() == 0
    prefix: list[str] = []
    if as_root:
        shutil.chown(base, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    try:
        subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "quantor"],
                       check=True, capture_output=True, timeout=120)
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-o",
                        f"-p {port} -h 127.0.0.1 -k {base} -F", "start"], check=True, capture_output=True,
                       timeout=60)
    except (subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"PostgreSQL run skipped: could not start a server ({exc}; {detail[-200:]!r})")
    try:
        yield f"postgresql+psycopg://quantor@127.0.0.1:{port}"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    base = request.getfixturevalue("pg_server")
    import psycopg

    name = "t" + uuid.uuid4().hex[:12]
    with psycopg.connect(base.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{base}/{name}"


@pytest.fixture
def fake():
    f = FakeAlpaca().start()
    condor_market(f)
    yield f
    f.stop()
    assert f.duplicates() == []  # every scenario: no re-sent order, no second fill for a decision


class Killed(BaseException):
    """The process dies here (nothing after this line runs; committed rows stay)."""


class KillAfterSubmit:
    """The real TradingClient, except the process is killed right after an order POST returned."""

    def __init__(self, real):
        self.real = real

    def submit_order(self, req):
        self.real.submit_order(req)
        raise Killed()

    def __getattr__(self, name):
        return getattr(self.real, name)


def expiry(fake: FakeAlpaca) -> dt.date:
    return fake.state.now.date() + dt.timedelta(days=35)


def req(fake: FakeAlpaca, cid: str = "qm-20260302-1500-enter", qty: int = 1) -> OrderRequest:
    return OrderRequest(cid, OrderIntent.OPEN, Structure.IRON_CONDOR, qty, condor_legs(expiry(fake)))


def test_ledger_rows_survive_reopen(db_url, fake):
    ledger = Ledger(db_url)
    broker = make_broker(fake, ledger)
    assert broker.submit(req(fake)).status is OrderStatus.FILLED
    ledger.set("killswitch", "REDUCING")
    ledger.close()
    again = Ledger(db_url)
    assert again.get("killswitch") == "REDUCING"
    assert len(again.open_positions()) == 1
    assert again.symbol_quantities() == fake.broker_positions()
    assert [o["status"] for o in again.orders()] == ["filled"]
    assert len(again.fills()) == 1 and again.cash_total() > 0
    again.close()


def test_killed_between_submit_and_ledger_write_resumes_without_resending(db_url, fake):
    ledger = Ledger(db_url)
    broker = make_broker(fake, ledger)
    broker.trading = KillAfterSubmit(broker.trading)
    with pytest.raises(Killed):
        broker.submit(req(fake))
    assert ledger.order_status("qm-20260302-1500-enter-0") == "planned"  # written before the POST
    assert ledger.open_positions() == {}
    ledger.close()
    # restart: a new process, a new ledger connection, a new broker
    ledger2 = Ledger(db_url)
    broker2 = make_broker(fake, ledger2)
    report = reconcile(ledger2, broker2)
    assert report.resumed == ["qm-20260302-1500-enter"] and report.clean, report.summary()
    assert ledger2.symbol_quantities() == fake.broker_positions()
    # the same decision again (a restart inside the same bar) sends nothing new
    res = broker2.submit(req(fake))
    assert res.status is OrderStatus.FILLED
    assert len(fake.created_orders()) == 1
    assert Counter(o["client_order_id"] for o in fake.created_orders()).most_common(1)[0][1] == 1
    assert len(ledger2.open_positions()) == 1
    ledger2.close()


def test_planned_but_never_sent_is_marked_unsent(db_url, fake):
    ledger = Ledger(db_url)
    ledger.order_planned("qm-x-enter-0", "qm-x-enter", 0, "open", 1, 1.0, {"meta": {
        "intent": "open", "structure": "iron_condor", "qty": 1, "legs": [], "limit": None}})
    broker = make_broker(fake, ledger)
    report = reconcile(ledger, broker)
    assert report.unsent == ["qm-x-enter-0"] and ledger.order_status("qm-x-enter-0") == "unsent"
    assert fake.created_orders() == []
    ledger.close()


def test_broker_is_the_source_of_truth_for_positions(db_url, fake):
    ledger = Ledger(db_url)
    broker = make_broker(fake, ledger)
    res = broker.submit(req(fake))
    assert res.position is not None
    # the position disappears at the broker (closed by hand / expired), and a foreign one appears
    with fake.lock:
        held = dict(fake.state.positions)
        fake.state.positions.clear()
        fake.state.positions["SPY260417P00400000"] = {"qty": 2.0, "avg": 1.0}
    report = reconcile(ledger, broker)
    assert report.closed_external == [res.position.position_id]
    assert report.broker_only == {"SPY260417P00400000": 2} and not report.clean
    assert ledger.open_positions() == {}
    assert held  # it was there before
    ledger.close()
