"""CRASH_MODE marks crashes and panics on the real 1999–2018 data, and its lines name the numbers."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.config import build_config
from core.dto import ExitReason, FeatureSet, Regime
from core.dto.snapshot import FEATURE_NAMES
from data_factory.embedded import EmbeddedMarket
from intelligence.features import compute_features, session_close_regimes
from intelligence.pipeline import feature_params
from intelligence.regime import (
    CRASH_DROP,
    CRASH_JUMP,
    CRASH_LEVEL,
    REGIME_CODE,
    RegimeThresholds,
    crash_reason,
    crash_triggers,
)
from strategies.exits import ExitInputs, ExitRules, crash_why, exit_reason
from strategies.gates import structure_gate

CRASH = REGIME_CODE[Regime.CRASH_MODE]


@pytest.fixture(scope="module")
def market() -> EmbeddedMarket:
    return EmbeddedMarket(seed=7)


@pytest.fixture(scope="module")
def sessions(market) -> pd.DataFrame:
    return session_close_regimes(market.daily_bars(), market.vix(), feature_params(build_config(None, {})))


def test_crash_mode_marks_panics_not_ordinary_down_days(sessions):
    crash = sessions["regime"] == CRASH
    by_year = crash.groupby(crash.index.year).mean()
    assert by_year.loc[2017] == 0.0  # the calmest year on record: never
    assert (by_year.loc[[2004, 2005, 2006, 2012, 2013]] == 0.0).all()
    assert by_year.loc[2008] > 0.2 and by_year.loc[2009] > 0.2  # the financial crisis
    assert crash.mean() < 0.065  # about 1 session in 16 over 1999-2018, mostly 2002 and 2008-09
    for day in ("2008-10-10", "2011-08-08", "2015-08-24", "2016-06-24", "2018-02-05", "2018-02-06"):
        assert crash.loc[day], day
    for day in ("2017-05-18", "2017-08-11", "2017-08-18"):  # -1.5..-1.8% days at VIX 15 (the old jump rule)
        assert not crash.loc[day], day
    trig = sessions["crash_trigger"].astype(int)
    assert trig.loc["2018-02-06"] == CRASH_LEVEL | CRASH_JUMP  # VIX 37.3 after +116%
    assert trig.loc["2016-06-24"] == CRASH_DROP  # Brexit: -3.6% from VIX 17


def test_session_close_regimes_match_the_pipeline_at_the_last_bar(market, sessions):
    bars = market.intraday_bars("2018-01-02", "2018-03-29", 5)
    frame = compute_features(bars, market.daily_bars(), market.vix(), (5,),
                             params=feature_params(build_config(None, {})))
    idx = pd.DatetimeIndex(bars.index)
    last = pd.DataFrame({"regime": frame["regime"], "crash_trigger": frame["crash_trigger"]},
                        index=idx).groupby(idx.tz_localize(None).normalize()).last()
    np.testing.assert_array_equal(last["regime"], sessions.loc[last.index, "regime"])
    np.testing.assert_array_equal(last["crash_trigger"], sessions.loc[last.index, "crash_trigger"])
    # bar by bar, a crash bar is exactly a bar with a trigger
    np.testing.assert_array_equal(np.asarray(frame["regime"]) == CRASH, np.asarray(frame["crash_trigger"]) > 0)


def test_crash_triggers_thresholds_are_inclusive_and_need_a_vix_floor():
    th = RegimeThresholds()
    close, fast, slow = np.array([95.0] * 5), np.full(5, 98.0), np.full(5, 100.0)
    vix = np.array([35.0, 34.9, 25.0, 24.9, 14.0])
    jump = np.array([0.0, 0.0, 0.20, 0.50, 0.0])
    ret = np.array([0.0, 0.0, 0.0, 0.0, -0.03])
    np.testing.assert_array_equal(crash_triggers(close, fast, slow, vix, jump, ret, th),
                                  [CRASH_LEVEL, 0, CRASH_JUMP, 0, CRASH_DROP])


def test_crash_reason_names_the_numbers():
    assert crash_reason(CRASH_LEVEL, 41.23, 0.0, 0.0) == "VIX 41.2 >= 35"
    assert crash_reason(CRASH_DROP, 17.0, -0.0342, 0.0) == "day -3.4% <= -3%"
    assert crash_reason(CRASH_JUMP, 28.0, -0.01, 0.46).startswith("VIX +46% to 28.0 (>= +20%, >= 25)")
    assert crash_reason(CRASH_LEVEL | CRASH_DROP, 41.2, -0.05, 0.1) == "VIX 41.2 >= 35; day -5.0% <= -3%"
    assert crash_reason(0, 41.2, 0.0, 0.0) == "" and crash_reason(math.nan, 41.2, 0.0, 0.0) == ""


def _row(**values: float):
    arrays = {name: np.array([values.get(name, math.nan)]) for name in FEATURE_NAMES}
    return FeatureSet.from_arrays(arrays).row(0)


def test_exit_and_gate_lines_name_the_trigger():
    cfg = build_config(None, {})
    crash_code = float(list(Regime).index(Regime.CRASH_MODE))
    f = _row(regime_code=crash_code, regime_crash=1.0, crash_trigger=float(CRASH_LEVEL), vix_prev_close=41.2,
             day_return=-0.01, vix_change=0.05, vix=40.0)
    assert crash_why(f) == "VIX 41.2 >= 35"
    x = ExitInputs(credit=1.0, mark_debit=1.0, dte=20, held_days=1, spot=100.0, regime=Regime.CRASH_MODE,
                   regime_why=crash_why(f))
    assert exit_reason(x, ExitRules.from_config(cfg)) == (ExitReason.CRASH_MODE, "regime CRASH_MODE (VIX 41.2 >= 35)")
    bare = ExitInputs(credit=1.0, mark_debit=1.0, dte=20, held_days=1, spot=100.0, regime=Regime.CRASH_MODE)
    assert exit_reason(bare, ExitRules.from_config(cfg))[1] == "regime CRASH_MODE"
    gate = structure_gate(f, cfg)
    assert gate is not None and gate[1] == "regime CRASH_MODE (VIX 41.2 >= 35): stand aside"


def test_regime_table_script_prints_every_year(capsys):
    path = Path(__file__).resolve().parents[1] / "scripts" / "regime_table.py"
    spec = importlib.util.spec_from_file_location("regime_table", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        module.main(["--daily-only", "--days", "2018"])
    text = buffer.getvalue()
    rows = [line for line in text.splitlines() if line.startswith("| 1") or line.startswith("| 2")]
    assert [r.split(" | ")[0][2:] for r in rows] == [str(y) for y in range(1999, 2019)]
    assert "2018-02-05 close day -4.1% <= -3%" in text
    assert rows[18].split(" | ")[5] == "0.0"  # 2017: no session in CRASH_MODE
