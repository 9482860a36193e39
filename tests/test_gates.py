"""Market-structure gates change decisions only where their condition holds (SPEC §3)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from core.backtest.run import build_features, load_inputs, run_backtest
from core.config import build_config
from data_factory.embedded import EmbeddedMarket


@pytest.fixture(scope="module")
def market():
    return EmbeddedMarket(seed=7)


def _by_day(result) -> dict[str, str]:
    """The 10:00 decision of every day without its position id (ids shift when a gate skips)."""
    return {x[:10]: re.sub(r"P\d{4} ", "", x.split(" | ")[0][26:]) for x in result.driver.decisions
            if x[10:16] == "T10:00"}


@pytest.mark.parametrize(
    ("gate", "feature", "limit"),
    [({"gates.use_gap_gate": True, "gates.max_gap_pct": 0.0019}, "gap", 0.0019),
     ({"gates.use_ratio_bias": True, "gates.ratio_z_threshold": 1.0}, "ratio_z", 1.0),
     ({"indicators.use_adx_filter": True, "indicators.adx_threshold_low": 25.0}, "adx", 25.0)],
)
def test_gate_acts_exactly_where_its_condition_holds(market, wide_book, gate, feature, limit):
    switched_off = {k: False for k, v in gate.items() if v is True}
    base_cfg = build_config(None, {**wide_book, **gate, **switched_off})
    gated_cfg = build_config(None, {**wide_book, **gate})
    inputs = load_inputs(gated_cfg, market)
    feats = build_features(gated_cfg, inputs)
    base, gated = _by_day(run_backtest(base_cfg, inputs=inputs, features=feats)), \
        _by_day(run_backtest(gated_cfg, inputs=inputs, features=feats))
    idx = pd.DatetimeIndex(inputs.bars.index)
    at_ten = {t.strftime("%Y-%m-%d"): float(feats.columns[feature][i]) for i, t in enumerate(idx) if t.hour == 10 and
              t.minute == 0}
    acted = [d for d in gated if gated[d] != base[d]]
    assert acted, "the gate never acted in this window"
    for day, text in gated.items():
        value = at_ten[day]
        beyond = np.isfinite(value) and abs(value) > limit
        if beyond:
            assert text.startswith("SKIP"), (day, text)
        else:
            assert text == base[day], (day, text, base[day])


def test_gap_gate_is_off_where_the_open_is_modelled():
    """A session whose open is modelled (stale vendor open) has a NaN gap: the gap gate lets it pass."""
    import math

    from core.dto import FeatureSet, ReasonCode
    from core.dto.snapshot import FEATURE_NAMES
    from strategies.gates import structure_gate

    cfg = build_config(None, {"gates.use_gap_gate": True, "gates.max_gap_pct": 0.0019})

    def row(gap: float):
        arrays = {name: np.array([math.nan]) for name in FEATURE_NAMES}
        arrays["gap"] = np.array([gap])
        return FeatureSet.from_arrays(arrays).row(0)

    blocked = structure_gate(row(0.01), cfg)
    assert blocked is not None and blocked[0] is ReasonCode.GAP
    assert structure_gate(row(math.nan), cfg) is None
