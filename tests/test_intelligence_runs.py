"""The brief's four-run comparison and the missing-timeframe case, through the full engine."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from core.backtest.run import build_features, load_inputs, run_backtest
from core.config import build_config
from data_factory.embedded import EmbeddedMarket

RUNS = {
    "baseline": {},
    "mtf": {"mtf.use_mtf": True},
    "fuzzy": {"fuzzy.use_fuzzy": True, "fuzzy.dynamic_sizing": True},
    "mtf+fuzzy": {"mtf.use_mtf": True, "fuzzy.use_fuzzy": True, "fuzzy.dynamic_sizing": True},
}


@pytest.fixture(scope="module")
def runs(wide_book):
    market = EmbeddedMarket(seed=7)
    out = {}
    for name, extra in RUNS.items():
        cfg = build_config(None, {**wide_book, **extra})
        out[name] = run_backtest(cfg, market=market)
    return out


def _entries(result) -> dict[str, int]:
    """Entry day -> contracts, from every position opened (closed at the end of data)."""
    return {t.position.opened_at.date().isoformat(): t.position.qty for t in result.driver.broker.closed}


def test_four_runs_finish_and_differ_as_their_settings_imply(runs):
    base, mtf, fz, both = (_entries(runs[k]) for k in ("baseline", "mtf", "fuzzy", "mtf+fuzzy"))
    assert base and mtf
    assert set(mtf) < set(base)  # the MTF filter only removes entries
    assert set(both) <= set(fz)
    assert set(base.values()) == {1}  # static sizing: --quantity 1
    assert any(q != 1 for q in fz.values())  # fuzzy sizing changes contract counts


def test_decisions_log_shows_factors(runs):
    lines = [x for x in runs["mtf+fuzzy"].driver.decisions if "T10:00:00" in x]
    assert lines
    for name in ("mtf=", "iv_rank=", "vix=", "rsi=", "adx=", "bollinger=", "stochastic=", "psar=", "volume=",
                 "sma_distance=", "F=", "sigma*=", "regime="):
        assert all(name in line for line in lines), name
    entered = [x for x in lines if " ENTER " in x]
    assert entered and all("entry_score=" in x and "q_final=" in x for x in entered)


class _OneMinuteGap(EmbeddedMarket):
    """The embedded market with every 1-minute bar of one session missing."""

    missing = dt.date(2017, 3, 15)

    def intraday_bars(self, start, end, minutes=5):
        bars = super().intraday_bars(start, end, minutes)
        if minutes != 1:
            return bars
        days = pd.DatetimeIndex(bars.index).tz_localize(None).normalize()
        return bars.loc[days != pd.Timestamp(self.missing)]


def test_missing_timeframe_for_a_day_is_logged_not_fatal(wide_book):
    cfg = build_config(None, {**wide_book, "backtest.end": "2017-03-31", "mtf.use_mtf": True})
    res = run_backtest(cfg, market=_OneMinuteGap(seed=7))
    day = [x for x in res.driver.decisions if x.startswith("2017-03-15T10:00")]
    assert len(day) == 1
    assert "MTF consensus unavailable" in day[0] and "1m" in day[0]
    other = [x for x in res.driver.decisions if x.startswith("2017-03-16T10:00")]
    assert other and "unavailable" not in other[0]


def test_features_computed_once_and_reused(wide_book):
    cfg = build_config(None, {**wide_book, "backtest.end": "2017-03-31", "fuzzy.use_fuzzy": True})
    inputs = load_inputs(cfg, EmbeddedMarket(seed=7))
    feats = build_features(cfg, inputs)
    a = run_backtest(cfg, inputs=inputs, features=feats)
    b = run_backtest(cfg, inputs=inputs, features=feats)
    assert a.features is b.features
    assert [t.pnl for t in a.driver.broker.closed] == [t.pnl for t in b.driver.broker.closed]


def test_fuzzy_size_follows_the_spec_example_through_the_entry_sizer(flat_chain):
    """F_t = 0.65, sigma* = 0.30, Q0 = 5 -> Q = floor(5 x 0.455) = 2 (SPEC §4)."""
    from core.config import AppConfig
    from strategies.sizing import size_contracts

    cfg = AppConfig().with_overrides({"fuzzy.use_fuzzy": True, "fuzzy.dynamic_sizing": True,
                                      "fuzzy.max_contracts": 5, "fuzzy.position_size_pct": 1.0})
    qty, sizes, why = size_contracts(400.0, 1_000_000.0, 0.0, 0.65, 0.30, cfg)
    assert (qty, sizes["q0"], why) == (2, 5, "")
    assert sizes["g"] == pytest.approx(0.455)
