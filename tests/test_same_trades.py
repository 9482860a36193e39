"""Same trades, pinned: positions of three runs (tests/goldens/*.json) open and close at the same
times and prices with the same P&L to the cent.  Recorded before the decision-core redesign (issue
10, identical after it) and re-recorded deliberately when the market model changed (issue 11:
joint spot/VIX bridge, IV following the intraday VIX, widening spreads, causal VIX proxy, modelled
stale opens, calibrated CRASH_MODE; then the range-conditioned intraday walk and the session
variance clock of the option chains).  A second structure (a put credit spread: only its spec and
the selection rule ``strategy.structure``) runs end to end through the unchanged engine, broker
and outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.backtest.run import run_backtest
from core.config import build_config
from core.dto import CONTRACT_MULTIPLIER, LegRole, Side, Structure
from core.outputs.backtest import legs_frame, trades_frame

GOLDENS = Path(__file__).parent / "goldens"
FLAGS = {"--use-mtf": {"mtf.use_mtf": True}, "--use-fuzzy": {"fuzzy.use_fuzzy": True},
         "--dynamic-sizing": {"fuzzy.dynamic_sizing": True}, "--enable-hedge": {"hedge.enable_hedge": True}}


def _rows(res) -> list[dict]:
    rows = []
    for t in res.driver.broker.closed:
        p = t.position
        rows.append({"entry_time": p.opened_at.isoformat(), "exit_time": t.exit_time.isoformat(),
                     "contracts": p.qty, "credit": round(p.credit, 4), "exit_reason": t.exit_reason.value,
                     "pnl": round(t.pnl, 2), "fees": round(t.fees, 2),
                     "legs": sorted([[leg.contract.occ_symbol, leg.side.name, leg.qty, round(leg.entry_price, 4),
                                      round(px, 4)] for leg, px in zip(p.legs, t.exit_prices, strict=True)])})
    return rows


@pytest.mark.parametrize("name", ["default", "mtf_fuzzy_dynamic", "hedge"])
def test_positions_equal_the_goldens(name):
    golden = json.loads((GOLDENS / f"{name}.json").read_text())
    cli = {"backtest.start": golden["range"][0], "backtest.end": golden["range"][1], "run.progress": False,
           "run.no_plot": True}
    for flag in golden["flags"]:
        cli.update(FLAGS[flag])
    res = run_backtest(build_config(None, cli))
    assert len(golden["trades"]) >= 30
    assert _rows(res) == golden["trades"]
    end = float(res.driver.rec.equity[res.inputs.first_bar:][-1])
    assert round(end, 2) == golden["end_equity"]


def test_put_credit_spread_runs_end_to_end_with_only_its_spec():
    cfg = build_config(None, {"backtest.start": "2018-01-02", "backtest.end": "2018-03-30", "run.progress": False,
                              "strategy.structure": "put_credit_spread", "strategy.min_credit_ratio": 0.06})
    res = run_backtest(cfg)
    closed = res.driver.broker.closed
    assert len(closed) >= 5
    for t in closed:
        pos = t.position
        assert pos.structure is Structure.PUT_CREDIT_SPREAD
        short, long_ = pos.leg(LegRole.SHORT_PUT), pos.leg(LegRole.LONG_PUT)
        assert [leg.side for leg in pos.legs] == [Side.SHORT, Side.LONG]
        width = short.contract.strike - long_.contract.strike
        assert 5.0 <= width <= 10.0
        # hand-worked: credit = short fill - long fill; max loss = width - credit
        assert pos.credit == pytest.approx(short.entry_price - long_.entry_price, abs=1e-9)
        assert pos.max_loss == pytest.approx(width - pos.credit, abs=1e-9)
        legs_pnl = sum(leg.side.sign * (px - leg.entry_price) * leg.qty * CONTRACT_MULTIPLIER
                       for leg, px in zip(pos.legs, t.exit_prices, strict=True))
        assert t.pnl == pytest.approx(legs_pnl - t.fees, abs=1e-6)
    trades = trades_frame(closed)
    assert set(trades["structure"]) == {"put_credit_spread"}
    assert trades["legs"].str.fullmatch(r"\+1P\d+(\.\d+)? -1P\d+(\.\d+)?").all()
    legs = legs_frame(closed)
    assert len(legs) == 4 * len(closed)  # two legs, each opened and closed
    equity = res.driver.rec.equity[res.inputs.first_bar:]
    assert equity[-1] - cfg.backtest.cash == pytest.approx(sum(t.pnl for t in closed), abs=1e-6)
    assert np.isfinite(equity).all()
    assert isinstance(trades, pd.DataFrame)


def record_goldens() -> None:
    """Re-record the goldens after a deliberate change of results (market model, rules):
    ``PYTHONPATH=. python tests/test_same_trades.py``; say why in the commit."""
    for path in sorted(GOLDENS.glob("*.json")):
        golden = json.loads(path.read_text())
        cli = {"backtest.start": golden["range"][0], "backtest.end": golden["range"][1], "run.progress": False,
               "run.no_plot": True}
        for flag in golden["flags"]:
            cli.update(FLAGS[flag])
        res = run_backtest(build_config(None, cli))
        golden["trades"] = _rows(res)
        golden["end_equity"] = round(float(res.driver.rec.equity[res.inputs.first_bar:][-1]), 2)
        path.write_text(json.dumps(golden, indent=1) + "\n")
        print(f"{path.name}: {len(golden['trades'])} trades, end equity {golden['end_equity']:,.2f}")


if __name__ == "__main__":
    record_goldens()
