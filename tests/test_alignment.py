"""As-of chain alignment (SPEC section 2): modes, iv_conf, lag limits, stale abort, common days."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.dto import DataError
from data_factory.alignment import align_chains, classify, iv_confidence, lag_limit_seconds


def _ny(*stamps: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(list(stamps)).tz_localize("America/New_York")


BARS = _ny("2018-03-05 09:55", "2018-03-05 10:00", "2018-03-05 10:05", "2018-03-05 10:10", "2018-03-05 10:15",
           "2018-03-05 10:20", "2018-03-05 10:25", "2018-03-05 10:30", "2018-03-05 10:35", "2018-03-05 10:40")
SNAPS = _ny("2018-03-05 10:00", "2018-03-05 10:20")


def test_iv_confidence_half_life() -> None:
    conf = iv_confidence(np.array([0.0, 300.0, 600.0, 900.0, 150.0, np.nan]))
    np.testing.assert_allclose(conf, [1.0, 0.5, 0.25, 0.125, 2 ** -0.5, 0.0], rtol=0, atol=1e-15)


def test_lag_limits() -> None:
    assert (lag_limit_seconds("SPY"), lag_limit_seconds("qqq"), lag_limit_seconds("SPX"),
            lag_limit_seconds("IWM")) == (600, 600, 900, 600)


def test_modes_lags_and_confidence_spy() -> None:
    al = align_chains(BARS, SNAPS, "SPY", max_stale_fraction=0.5)
    assert al.modes().tolist() == ["none", "exact", "prior", "prior", "stale", "exact", "prior", "prior", "stale",
                                   "stale"]
    np.testing.assert_array_equal(al.lag_seconds[1:], [0, 300, 600, 900, 0, 300, 600, 900, 1200])
    assert np.isnan(al.lag_seconds[0])
    assert al.snap_index.tolist() == [-1, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    np.testing.assert_allclose(al.iv_conf, [0, 1, 0.5, 0.25, 0.125, 1, 0.5, 0.25, 0.125, 0.0625], atol=1e-15)
    d = al.diagnostics
    assert (d.bars, d.exact_pct, d.prior_pct, d.stale_pct, d.none_pct) == (10, 20.0, 40.0, 30.0, 10.0)
    # lags seen: 0,300,600,900,0,300,600,900,1200 -> median 600, p90 (linear) 960, max 1200
    assert (d.lag_p50_s, d.lag_p90_s, d.lag_max_s) == (600.0, 960.0, 1200.0)
    assert d.iv_conf_mean == pytest.approx((1 + 0.5 + 0.25 + 0.125 + 1 + 0.5 + 0.25 + 0.125 + 0.0625) / 10)
    assert d.iv_conf_min == 0.0


def test_spx_allows_fifteen_minutes() -> None:
    al = align_chains(BARS, SNAPS, "SPX", max_stale_fraction=0.5)
    assert al.modes().tolist()[4] == "prior"
    assert al.diagnostics.stale_pct == 10.0  # only 10:40 (1200 s) is beyond 900 s


def test_aborts_when_more_than_twenty_percent_stale() -> None:
    with pytest.raises(DataError) as info:
        align_chains(BARS, SNAPS, "SPY", source="chain.parquet")
    assert str(info.value) == (
        "chain.parquet: 40% of 10 bars have no chain snapshot within 600s (stale 30.0%, none 10.0%, limit 20%); "
        "supply snapshots at least every 600s, raise the limit with --chain-max-lag SECONDS (config "
        "data.chain_max_lag_seconds) or the share with --chain-max-stale FRACTION (data.chain_max_stale_fraction), "
        "or use daily bars with end-of-day chains")


def test_exactly_twenty_percent_is_accepted() -> None:
    bars = BARS[1:6]  # 10:00 exact, 10:05, 10:10 prior, 10:15 stale, 10:20 exact -> 1/5 stale
    assert align_chains(bars, SNAPS, "SPY").diagnostics.stale_pct == 20.0
    with pytest.raises(DataError):
        align_chains(bars, SNAPS, "SPY", max_stale_fraction=0.19)


def test_previous_day_snapshot_is_not_fresh_but_is_remembered() -> None:
    snaps = _ny("2018-03-02 15:55")  # Friday's last snapshot
    bars = _ny("2018-03-02 16:00", "2018-03-05 09:35")
    al = align_chains(bars, snaps.append(_ny("2018-03-05 09:35")), "SPY")
    assert al.modes().tolist() == ["prior", "exact"]
    al2 = align_chains(_ny("2018-03-02 16:00"), snaps, "SPY")
    assert al2.lag_seconds.tolist() == [300.0]
    idx, lag, code = classify(_ny("2018-03-05 09:35"), snaps, 600)
    assert idx.tolist() == [0]
    assert np.isnan(lag[0])
    assert code.tolist() == [3]


def test_only_days_in_both_data_sets_are_judged() -> None:
    bars = _ny("2018-03-05 10:00", "2018-03-06 10:00", "2018-03-06 10:05", "2018-03-06 12:00")
    snaps = _ny("2018-03-06 10:00", "2018-03-06 12:00", "2018-03-07 10:00")
    al = align_chains(bars, snaps, "SPY")
    d = al.diagnostics
    assert al.on_common_day.tolist() == [False, True, True, True]
    assert (d.bars, d.common_days, d.spot_only_days, d.options_only_days) == (3, 1, ("2018-03-05",), ("2018-03-07",))
    assert d.exact_pct == pytest.approx(200 / 3)
    assert d.prior_pct == pytest.approx(100 / 3)


def test_no_common_day_is_an_error() -> None:
    with pytest.raises(DataError, match="no day is present in both"):
        align_chains(_ny("2018-03-05 10:00"), _ny("2018-03-06 10:00"), "SPY")


def test_tz_conversion_of_utc_snapshots() -> None:
    snaps_utc = pd.DatetimeIndex(["2018-03-05 15:00"]).tz_localize("UTC")  # = 10:00 New York (EST)
    al = align_chains(_ny("2018-03-05 10:00", "2018-03-05 10:05"), snaps_utc, "SPY")
    assert al.modes().tolist() == ["exact", "prior"]
