"""AlpacaBroker against the fake Alpaca server: multi-leg orders, the limit walk, idempotent client
ids and lookup-by-client-id after every ambiguous fault (timeout, 5xx, 429, duplicate 422)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
from fake_alpaca import FakeAlpaca, condor_legs, condor_market, make_broker

from core.broker.alpaca import AlpacaBroker
from core.broker.protocol import OrderRequest, OrderStatus
from core.dto import ExitReason, Leg, OrderIntent, Structure
from core.live.ledger import Ledger


@pytest.fixture
def fake():
    f = FakeAlpaca().start()
    condor_market(f)
    yield f
    f.stop()
    assert f.duplicates() == []  # every scenario: no re-sent order, no second fill for a decision


def make(fake: FakeAlpaca, tmp_path: Path) -> tuple[AlpacaBroker, Ledger]:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    return make_broker(fake, ledger), ledger


def expiry_of(fake: FakeAlpaca) -> dt.date:
    return fake.state.now.date() + dt.timedelta(days=35)


def open_req(fake: FakeAlpaca, cid: str = "qm-20260302-1000-enter", qty: int = 2) -> OrderRequest:
    return OrderRequest(cid, OrderIntent.OPEN, Structure.IRON_CONDOR, qty, condor_legs(expiry_of(fake)))


def assert_no_duplicates(fake: FakeAlpaca) -> None:
    orders = fake.created_orders()
    cids = Counter(o["client_order_id"] for o in orders)
    assert all(n == 1 for n in cids.values()), cids
    # at most one filled order per decision step family
    filled = Counter(o["client_order_id"].rsplit("-", 1)[0] for o in orders if o["status"] == "filled")
    assert all(n == 1 for n in filled.values()), filled


def assert_ledger_matches_broker(fake: FakeAlpaca, ledger: Ledger) -> None:
    assert ledger.symbol_quantities() == fake.broker_positions()


def test_condor_opens_as_one_mleg_order_at_mid_less_edge(fake, tmp_path):
    broker, ledger = make(fake, tmp_path)
    res = broker.submit(open_req(fake))
    assert res.status is OrderStatus.FILLED, res.text
    orders = fake.created_orders()
    assert len(orders) == 1 and orders[0]["order_class"] == "mleg" and len(orders[0]["legs"]) == 4
    mid, natural = broker.prices(tuple(Leg(x.role, x.contract, x.side, 2, 0) for x in condor_legs(expiry_of(fake))),
                                 2, opening=True)
    assert float(orders[0]["limit_price"]) == pytest.approx(-round(mid - 0.05, 2))
    assert res.position is not None and res.position.qty == 2
    assert res.position.credit == pytest.approx(round(mid - 0.05, 2), abs=1e-6)
    assert_ledger_matches_broker(fake, ledger)
    assert ledger.order_status("qm-20260302-1000-enter-0") == "filled"


def test_limit_walks_toward_natural_and_gives_up(fake, tmp_path):
    fake.state.fill_edge = 0.12  # fills only at mid - 0.12 or worse for us
    broker, ledger = make(fake, tmp_path)
    res = broker.submit(open_req(fake))
    assert res.status is OrderStatus.FILLED
    limits = [float(o["limit_price"]) for o in fake.created_orders()]
    assert len(limits) == 3 and limits[0] < limits[1] < limits[2]  # credits shrink toward natural
    assert [o["status"] for o in fake.created_orders()] == ["canceled", "canceled", "filled"]
    assert_no_duplicates(fake)
    fake.state.fill_orders = False
    res2 = broker.submit(open_req(fake, "qm-20260302-1005-enter"))
    assert res2.status is OrderStatus.REJECTED and "not filled" in res2.text
    assert all(o["status"] in ("canceled", "filled") for o in fake.created_orders())
    assert_ledger_matches_broker(fake, ledger)


@pytest.mark.parametrize("fault", [
    {"status": 429, "retry_after": 0}, {"status": 429}, {"status": 500}, {"status": 503},
    {"status": 504, "body": "after"}, {"hang": 1.0},
])
def test_ambiguous_post_is_looked_up_never_resent(fake, tmp_path, fault):
    broker, ledger = make(fake, tmp_path)
    fake.fault("POST", "/v2/orders", **fault)
    res = broker.submit(open_req(fake))
    assert res.status is OrderStatus.FILLED, res.text
    assert fake.count("GET", "/v2/orders:by_client_order_id") >= 1
    assert len(fake.created_orders()) == 1
    assert_no_duplicates(fake)
    assert_ledger_matches_broker(fake, ledger)


def test_duplicate_id_422_means_it_exists(fake, tmp_path):
    broker, ledger = make(fake, tmp_path)
    fake.fault("POST", "/v2/orders", status=504, body="after")  # placed, answered 504
    res = broker.submit(open_req(fake))
    assert res.status is OrderStatus.FILLED
    # sending the same step again (as an SDK retry would) gets 422 and resolves to the same order
    again = broker._post("qm-20260302-1000-enter-0", broker.order_body("qm-20260302-1000-enter-0", 2,
                                                                            res.position.legs if res.position else (),
                                                                            1.0, True))
    assert again is not None and again["status"] == "filled"
    assert len(fake.created_orders()) == 1
    assert fake.state.duplicate_posts == 1  # the deliberate re-send above, answered 422
    fake.state.duplicate_posts = 0


def test_403_buying_power_is_a_reject_not_a_retry(fake, tmp_path):
    fake.state.reject_403 = True
    broker, ledger = make(fake, tmp_path)
    res = broker.submit(open_req(fake))
    assert res.status is OrderStatus.REJECTED and "403" in res.text
    assert fake.count("POST", "/v2/orders") == 1
    assert ledger.order_status("qm-20260302-1000-enter-0") == "rejected"


def test_partial_fill_keeps_the_filled_part_and_walks_the_rest(fake, tmp_path):
    fake.state.partial = 1
    broker, ledger = make(fake, tmp_path)
    res = broker.submit(open_req(fake, qty=3))
    # the first order fills 1 of 3 and rests; cancel, then the next step fills the remaining 2
    assert res.status is OrderStatus.FILLED and res.position is not None
    assert res.position.qty == 3
    assert_ledger_matches_broker(fake, ledger)
    assert_no_duplicates(fake)


def test_close_is_a_multileg_closing_order(fake, tmp_path):
    broker, ledger = make(fake, tmp_path)
    res = broker.submit(open_req(fake))
    assert res.position is not None
    close = broker.submit(OrderRequest("qm-20260302-1100-exit", OrderIntent.CLOSE, Structure.IRON_CONDOR, 2,
                                       position_id=res.position.position_id, exit_reason=ExitReason.PROFIT_TARGET))
    assert close.status is OrderStatus.FILLED and close.trade is not None, close.text
    last = fake.created_orders()[-1]
    assert {leg["position_intent"] for leg in last["legs"]} == {"buy_to_close", "sell_to_close"}
    assert fake.broker_positions() == {}
    assert ledger.positions("open") == [] and ledger.positions("closed")[0]["exit_reason"] == "profit_target"


def test_fill_event_never_arrives_polling_finds_it(fake, tmp_path):
    fake.state.suppress_events = True
    broker, ledger = make(fake, tmp_path)
    res = broker.submit(open_req(fake))
    assert res.status is OrderStatus.FILLED
    assert fake.state.events_sent == 0


def test_rate_limiter_keeps_under_200_per_minute():
    from core.live.clients import RateLimiter

    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s
    limiter = RateLimiter(190, burst=10, clock=lambda: now[0], sleep=sleep)
    stamps = []
    for _ in range(400):
        limiter.acquire()
        stamps.append(now[0])
    for i in range(len(stamps)):
        j = i
        while j < len(stamps) and stamps[j] - stamps[i] < 60.0:
            j += 1
        assert j - i <= 200  # never more than 200 requests inside any 60 s window


def test_credentials_never_print():
    from core.live.clients import Credentials

    c = Credentials("PKSECRETKEYID", "very-secret-value")
    assert "PKSECRETKEYID" not in repr(c) and "very-secret-value" not in str(c) and "very-secret" not in f"{c}"


def test_partial_close_keeps_the_rest_open(fake, tmp_path):
    broker, ledger = make(fake, tmp_path)
    res = broker.submit(open_req(fake, qty=3))
    assert res.position is not None and res.position.qty == 3
    fake.state.partial = 2
    fake.state.fills_left = 1  # after the partial fill nothing more fills: the walk gives up on the rest
    close = broker.submit(OrderRequest("qm-20260302-1100-exit", OrderIntent.CLOSE, Structure.IRON_CONDOR, 3,
                                       position_id=res.position.position_id, exit_reason=ExitReason.STOP_LOSS))
    assert close.status is OrderStatus.FILLED and close.trade is not None and close.trade.position.qty == 2
    assert broker.open_positions()[res.position.position_id].qty == 1
    assert_ledger_matches_broker(fake, ledger)
    assert [p["qty"] for p in ledger.positions("open")] == [1] and len(ledger.positions("closed")) == 1
    assert_no_duplicates(fake)


def test_exhausted_429_on_post_never_duplicates(fake, tmp_path):
    broker, ledger = make(fake, tmp_path)
    fake.fault("POST", "/v2/orders", status=429, retry_after=0, times=5)
    res = broker.submit(open_req(fake))
    assert res.status is OrderStatus.FILLED, res.text
    assert fake.count("POST", "/v2/orders") == 6 and len(fake.created_orders()) == 1
    assert ledger.order_status("qm-20260302-1000-enter-0") == "unsent"
    assert ledger.order_status("qm-20260302-1000-enter-1") == "filled"
    assert_ledger_matches_broker(fake, ledger)


def test_single_leg_structure_is_a_simple_option_order(fake, tmp_path):
    from core.dto import Leg, LegRole, OptionContract, OptionRight, Side

    broker, ledger = make(fake, tmp_path)
    put = Leg(LegRole.LONG_PUT, OptionContract("SPY", expiry_of(fake), 470, OptionRight.PUT), Side.LONG, 1, 0.0)
    res = broker.submit(OrderRequest("qm-20260302-1000-enter", OrderIntent.OPEN, Structure.LONG_PUT, 2, (put,)))
    assert res.status is OrderStatus.FILLED and res.position is not None, res.text
    order = fake.created_orders()[0]
    assert order["order_class"] == "simple" and order["side"] == "buy" and float(order["limit_price"]) > 0
    assert res.position.credit < 0  # a debit
    assert_ledger_matches_broker(fake, ledger)
    close = broker.submit(OrderRequest("qm-20260302-1100-exit", OrderIntent.CLOSE, Structure.LONG_PUT, 2,
                                       position_id=res.position.position_id, exit_reason=ExitReason.PROFIT_TARGET))
    assert close.status is OrderStatus.FILLED, close.text
    assert fake.created_orders()[-1]["side"] == "sell" and fake.broker_positions() == {}
