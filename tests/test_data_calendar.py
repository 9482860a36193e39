"""NYSE calendar facts and session-aware resampling / closed-bar alignment."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from core.dto import DataError
from data_factory.bars import align_closed, daily_from_intraday, resample_bars, slice_dates
from data_factory.calendar import (
    bar_close_times,
    is_early_close,
    is_session,
    next_session,
    previous_session,
    session_open_close,
    sessions,
    to_date,
    trading_days_between,
)

NY = "America/New_York"


def _ny(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=NY)


# ---------------------------------------------------------------- calendar facts


def test_july_3_2018_closes_at_13() -> None:
    open_, close = session_open_close(dt.date(2018, 7, 3))
    assert open_ == _ny("2018-07-03 09:30")
    assert close == _ny("2018-07-03 13:00")
    assert is_early_close("2018-07-03")


def test_bush_funeral_closed_and_skipped() -> None:
    assert not is_session("2018-12-05")
    week = sessions("2018-12-03", "2018-12-07")
    assert [d.day for d in week] == [3, 4, 6, 7]
    assert week.name == "date"
    assert week.tz is None
    with pytest.raises(DataError, match="not an NYSE session"):
        session_open_close("2018-12-05")


def test_day_after_thanksgiving_early_close_and_normal_day() -> None:
    assert is_early_close(dt.date(2018, 11, 23))
    assert not is_early_close(dt.date(2018, 11, 26))
    assert not is_session("2018-11-22")


def test_2018_has_251_sessions() -> None:
    # 252 regular sessions minus the 2018-12-05 national day of mourning
    assert len(sessions("2018-01-01", "2018-12-31")) == 251


def test_five_minute_grid_normal_day() -> None:
    times = bar_close_times("2018-11-26", 5)
    assert len(times) == 78
    assert times[0] == _ny("2018-11-26 09:35")
    assert times[-1] == _ny("2018-11-26 16:00")
    assert str(times.tz) == NY
    # November 26 is after the DST change: 09:35 New York is 14:35 UTC
    assert times[0].tz_convert("UTC").hour == 14


def test_five_minute_grid_early_close() -> None:
    times = bar_close_times("2018-11-23", 5)
    assert len(times) == 42
    assert times[-1] == _ny("2018-11-23 13:00")


def test_sixty_minute_grid_has_short_last_bar() -> None:
    labels = [t.strftime("%H:%M") for t in bar_close_times("2018-06-01", 60)]
    assert labels == ["10:30", "11:30", "12:30", "13:30", "14:30", "15:30", "16:00"]
    early = [t.strftime("%H:%M") for t in bar_close_times("2018-07-03", 60)]
    assert early == ["10:30", "11:30", "12:30", "13:00"]


def test_trading_days_between_and_neighbours() -> None:
    assert trading_days_between("2018-11-30", "2018-12-03") == 1  # Friday -> Monday
    assert trading_days_between("2018-12-04", "2018-12-06") == 1  # Dec 5 closed
    assert trading_days_between("2018-12-06", "2018-12-04") == -1
    assert trading_days_between("2018-01-01", "2018-12-31") == 251
    assert next_session("2018-12-04") == dt.date(2018, 12, 6)
    assert previous_session("2018-12-06") == dt.date(2018, 12, 4)
    assert next_session("2018-07-03") == dt.date(2018, 7, 5)
    assert previous_session("2018-07-07") == dt.date(2018, 7, 6)  # Saturday -> Friday


def test_dates_outside_calendar_and_bad_text() -> None:
    with pytest.raises(DataError, match="outside the trading calendar"):
        sessions("1980-01-01", "1980-02-01")
    with pytest.raises(DataError, match="YYYY-MM-DD"):
        to_date("not a date")
    assert to_date(pd.Timestamp("2018-03-01 15:00", tz=NY)) == dt.date(2018, 3, 1)


# ---------------------------------------------------------------- resampling


def _minute_bars(day: str) -> pd.DataFrame:
    """1-minute bars of one session with prices 100 + k (k = bar number) and volume k."""
    labels = bar_close_times(day, 1)
    k = np.arange(1, len(labels) + 1, dtype=np.float64)
    frame = pd.DataFrame(
        {"open": 100 + k - 0.5, "high": 100 + k + 0.25, "low": 100 + k - 0.75, "close": 100 + k, "volume": k},
        index=labels,
    )
    frame.index.name = "ts"
    return frame


def test_resample_five_minutes_hand_worked() -> None:
    bars = resample_bars(_minute_bars("2018-06-01"), 5)
    assert len(bars) == 78
    first = bars.iloc[0]
    # minutes 1..5: open of minute 1, max high of minute 5, min low of minute 1, close of 5, volume 1+..+5
    assert (first["open"], first["high"], first["low"], first["close"], first["volume"]) == (
        100.5,
        105.25,
        100.25,
        105.0,
        15.0,
    )
    assert bars.index[0] == _ny("2018-06-01 09:35")
    assert bars["volume"].sum() == 390 * 391 / 2


def test_resample_sixty_minutes_last_bar_short() -> None:
    bars = resample_bars(_minute_bars("2018-07-03"), 60)
    assert [t.strftime("%H:%M") for t in bars.index] == ["10:30", "11:30", "12:30", "13:00"]
    last = bars.iloc[-1]
    # 12:31..13:00 are minutes 181..210
    assert (last["open"], last["close"], last["volume"]) == (280.5, 310.0, float(sum(range(181, 211))))


def test_resample_matches_pandas_on_divisible_bins() -> None:
    day_a, day_b = _minute_bars("2018-06-01"), _minute_bars("2018-06-04")
    bars = pd.concat([day_a, day_b])
    ours = resample_bars(bars, 15)
    agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    theirs = bars.resample("15min", closed="right", label="right").agg(agg).dropna()
    pd.testing.assert_frame_equal(ours, theirs, check_freq=False, check_names=False, check_index_type=False)


def test_resample_is_idempotent_across_timeframes() -> None:
    bars = _minute_bars("2018-06-01")
    direct = resample_bars(bars, 15)
    via_five = resample_bars(resample_bars(bars, 5), 15)
    pd.testing.assert_frame_equal(direct, via_five)


def test_daily_from_intraday() -> None:
    bars = pd.concat([_minute_bars("2018-07-03"), _minute_bars("2018-07-05")])
    daily = daily_from_intraday(bars)
    assert list(daily.index) == [pd.Timestamp("2018-07-03"), pd.Timestamp("2018-07-05")]
    assert daily.index.name == "date"
    row = daily.loc["2018-07-03"]
    assert (row["open"], row["high"], row["low"], row["close"]) == (100.5, 310.25, 100.25, 310.0)
    assert daily.loc["2018-07-05", "volume"] == 390 * 391 / 2


def test_resample_rejects_bad_input() -> None:
    bars = _minute_bars("2018-06-01")
    with pytest.raises(DataError, match="timezone-aware"):
        resample_bars(bars.tz_localize(None), 5)
    with pytest.raises(DataError, match="not sorted"):
        resample_bars(bars.iloc[::-1], 5)
    with pytest.raises(DataError, match="lack column"):
        resample_bars(bars.drop(columns="volume"), 5)
    outside = bars.copy()
    outside.index = outside.index + pd.Timedelta(minutes=30)
    with pytest.raises(DataError, match="outside their NYSE session"):
        resample_bars(outside, 5)


# ---------------------------------------------------------------- alignment


def test_align_closed_hand_worked() -> None:
    hourly = pd.DatetimeIndex([_ny("2018-06-01 10:30"), _ny("2018-06-01 11:30")])
    base = pd.DatetimeIndex([_ny(f"2018-06-01 {t}") for t in ("10:25", "10:30", "11:25", "11:30", "16:00")])
    assert align_closed(hourly, base).tolist() == [-1, 0, 0, 1, 1]


def test_align_closed_daily_visible_only_after_close() -> None:
    daily = pd.DataFrame({"close": [1.0, 2.0]}, index=pd.DatetimeIndex(["2018-07-03", "2018-07-05"], name="date"))
    base = pd.DatetimeIndex(
        [_ny("2018-07-03 12:55"), _ny("2018-07-03 13:00"), _ny("2018-07-05 15:55"), _ny("2018-07-05 16:00")]
    )
    assert align_closed(daily, base).tolist() == [-1, 0, 0, 1]


def test_align_closed_equals_brute_force() -> None:
    five = resample_bars(pd.concat([_minute_bars("2018-06-01"), _minute_bars("2018-06-04")]), 5)
    hourly = resample_bars(five, 60)
    got = align_closed(hourly, five.index)
    expected = [max((j for j, lab in enumerate(hourly.index) if lab <= ts), default=-1) for ts in five.index]
    assert got.tolist() == expected


def test_slice_dates_error_names_range() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0]}, index=pd.DatetimeIndex(["2018-01-02", "2018-01-03"], name="date"))
    assert len(slice_dates(frame, None, "2018-01-02", "test data")) == 1
    with pytest.raises(DataError, match=r"test data covers 2018-01-02\.\.2018-01-03"):
        slice_dates(frame, "2017-12-01", None, "test data")
    with pytest.raises(DataError, match="after end"):
        slice_dates(frame, "2018-01-03", "2018-01-02", "test data")
