"""Shared pytest set-up: the repository root on ``sys.path`` and the fixtures several modules use.

Test modules never import from each other; what two of them share lives here as a fixture.
"""
from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def wide_book() -> Mapping[str, Any]:
    """Config overrides (dotted paths) that leave room for every entry the gates allow, so engine
    runs differ only by their gates and sizing: March-June 2017, $250k, caps out of the way."""
    return MappingProxyType({
        "backtest.start": "2017-03-01", "backtest.end": "2017-06-30", "backtest.cash": 250_000.0,
        "strategy.max_positions": 100, "strategy.max_alloc": 1.0, "run.progress": False, "run.no_plot": True,
        "risk.max_portfolio_delta": 1e9, "risk.max_portfolio_gamma": 1e9, "risk.max_portfolio_vega": 1e9,
        "risk.max_near_expiry_gamma": 1e9,
    })


@pytest.fixture(scope="session")
def flat_chain():
    """Modelled option chains (``ModelChainSource``) over a flat 250 close on 2018-03-01/02 at VIX 15."""
    from data_factory.chains import ModelChainSource
    from data_factory.scenario import flat_bars

    return ModelChainSource(flat_bars(dt.date(2018, 3, 1), dt.date(2018, 3, 2), 250.0)["close"],
                            pd.DataFrame({"vix": [15.0]}, index=pd.DatetimeIndex(["2018-02-28"])))
