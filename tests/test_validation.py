"""The one validator: every kind of bad file gives its own one-line message (file, row, column, fix)."""
from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.dto import DataError
from data_factory.validation import validate_bars, validate_chain
from data_factory.vendor import FilesMarket

DAY = dt.date(2018, 3, 5)
GOOD_BARS = """ts,open,high,low,close,volume
2018-03-05 09:35,100.0,101.0,99.5,100.5,1000
2018-03-05 09:40,100.5,101.2,100.1,101.0,1200
2018-03-05 09:45,101.0,101.5,100.8,101.1,900
2018-03-05 09:50,101.1,101.3,100.9,101.2,800
"""
GOOD_CHAIN = """quote_date,expiration,strike,option_type,bid,ask,underlying_price
2018-03-05,2018-03-16,100,call,1.50,1.60,100.0
2018-03-05,2018-03-16,100,put,1.40,1.50,100.0
2018-03-05,2018-03-16,105,call,0.20,0.25,100.0
2018-03-05,2018-03-16,105,put,5.00,5.20,100.0
"""


def _replace_line(text: str, line: int, new: str) -> str:
    lines = text.splitlines()
    lines[line - 1] = new
    return "\n".join(lines) + "\n"


def _bars_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bars.csv"
    path.write_text(text)
    with pytest.raises(DataError) as info:
        FilesMarket(path).intraday_bars(DAY, DAY, 5)
    message = str(info.value)
    assert "\n" not in message
    return message


def _chain_error(tmp_path: Path, text: str) -> str:
    bars = tmp_path / "daily.csv"
    bars.write_text("date,open,high,low,close,volume\n2018-03-05,100,101,99,100,10\n")
    path = tmp_path / "chain.csv"
    path.write_text(text)
    def open_and_read() -> None:  # the first rows are checked when the files are opened
        market = FilesMarket(bars, path)
        market.chains(market.daily_bars())

    with pytest.raises(DataError) as info:
        open_and_read()
    message = str(info.value)
    assert "\n" not in message
    return message


def test_good_files_pass(tmp_path: Path) -> None:
    (tmp_path / "bars.csv").write_text(GOOD_BARS)
    bars = FilesMarket(tmp_path / "bars.csv").intraday_bars(DAY, DAY, 5)
    assert len(bars) == 4
    validate_chain(pd.read_csv(io.StringIO(GOOD_CHAIN)), "chain.csv")


def test_missing_column(tmp_path: Path) -> None:
    text = GOOD_BARS.replace("close", "last")
    assert _bars_error(tmp_path, text) == (
        "bars.csv: column 'close': missing (columns found: ts, open, high, low, volume); rename the column or pass "
        "a column_map (see data_factory/vendor.py for the layouts)")


def test_unsorted_timestamps(tmp_path: Path) -> None:
    text = _replace_line(GOOD_BARS, 4, "2018-03-05 09:37,101.0,101.5,100.8,101.1,900")
    assert _bars_error(tmp_path, text) == (
        "bars.csv: line 4, column 'ts': 2018-03-05 09:37:00 is earlier than the previous row's 2018-03-05 09:40:00; "
        "sort the file by time")


def test_duplicate_timestamps(tmp_path: Path) -> None:
    text = _replace_line(GOOD_BARS, 5, "2018-03-05 09:45,101.1,101.3,100.9,101.2,800")
    assert _bars_error(tmp_path, text) == (
        "bars.csv: line 5, column 'ts': timestamp 2018-03-05 09:45:00 repeats the previous row; drop the duplicate row")


def test_negative_price(tmp_path: Path) -> None:
    text = _replace_line(GOOD_BARS, 3, "2018-03-05 09:40,100.5,101.2,-1,101.0,1200")
    assert _bars_error(tmp_path, text) == (
        "bars.csv: line 3, column 'low': low is -1, prices must be positive; fix or drop the row")


def test_high_below_close(tmp_path: Path) -> None:
    text = _replace_line(GOOD_BARS, 2, "2018-03-05 09:35,100.0,100.4,99.5,100.5,1000")
    assert _bars_error(tmp_path, text) == (
        "bars.csv: line 2, column 'high': high 100.4 is below max(open, close) 100.5; fix or drop the row")


def test_low_above_open(tmp_path: Path) -> None:
    text = _replace_line(GOOD_BARS, 5, "2018-03-05 09:50,101.1,101.3,101.15,101.2,800")
    assert "line 5, column 'low': low 101.15 is above min(open, close) 101.1" in _bars_error(tmp_path, text)


def test_nan_in_bars(tmp_path: Path) -> None:
    text = _replace_line(GOOD_BARS, 4, "2018-03-05 09:45,101.0,101.5,,101.1,900")
    assert _bars_error(tmp_path, text) == (
        "bars.csv: line 4, column 'low': low is empty or not a number; fill the value or drop the row")


def test_earliest_row_is_reported_first() -> None:
    frame = pd.DataFrame({"ts": pd.date_range("2018-03-05 09:35", periods=3, freq="5min"),
                          "open": [1.0, 1.0, 1.0], "high": [1.0, 0.5, 1.0], "low": [1.0, 1.0, -1.0],
                          "close": [1.0, 1.0, 1.0], "volume": [1.0, 1.0, 1.0]})
    with pytest.raises(DataError, match=r"^mem: line 3, column 'high'"):
        validate_bars(frame, "mem")
    with pytest.raises(DataError, match=r"^mem: row 12, column 'high'"):
        validate_bars(frame, "mem", rows=np.array([10, 12, 14]), row_word="row")


def test_crossed_quote(tmp_path: Path) -> None:
    text = _replace_line(GOOD_CHAIN, 3, "2018-03-05,2018-03-16,100,put,1.55,1.50,100.0")
    assert _chain_error(tmp_path, text) == (
        "chain.csv: line 3, column 'bid': crossed quote: bid 1.55 > ask 1.5; fix the quote or drop the row")


def test_expiry_before_quote_date(tmp_path: Path) -> None:
    text = _replace_line(GOOD_CHAIN, 5, "2018-03-05,2018-03-02,105,put,5.00,5.20,100.0")
    assert _chain_error(tmp_path, text) == (
        "chain.csv: line 5, column 'expiration': expiration 2018-03-02 is before the quote date 2018-03-05; "
        "fix or drop the row")


def test_nan_in_chain(tmp_path: Path) -> None:
    text = _replace_line(GOOD_CHAIN, 4, "2018-03-05,2018-03-16,105,call,0.20,,100.0")
    assert _chain_error(tmp_path, text) == (
        "chain.csv: line 4, column 'ask': ask is empty or not a number; fill the value or drop the row")


def test_chain_missing_column(tmp_path: Path) -> None:
    text = GOOD_CHAIN.replace(",underlying_price", ",px")
    assert _chain_error(tmp_path, text).startswith("chain.csv: column 'underlying_price': missing (columns found: ")


@pytest.mark.parametrize(("line", "row", "expected"), [
    (2, "2018-03-05,2018-03-16,100,straddle,1.50,1.60,100.0",
     "line 2, column 'option_type': option type 'straddle' is not one of call, put, c, p; use call/put or c/p"),
    (3, "2018-03-05,2018-03-16,-5,put,1.40,1.50,100.0", "line 3, column 'strike': strike is -5, it must be positive"),
    (4, "2018-03-05,2018-03-16,105,call,-0.20,0.25,100.0", "line 4, column 'bid': bid is -0.2, it must be >= 0"),
    (5, "2018-03-05,2018-03-16,105,call,5.00,5.20,100.0",
     "line 5, column 'strike': call 105 expiring 2018-03-16 repeats an earlier row of the same quote time"),
    (5, "2018-03-04,2018-03-16,105,put,5.00,5.20,100.0",
     "line 5, column 'quote_date': 2018-03-04 00:00:00 is earlier than the previous row's 2018-03-05 00:00:00"),
])
def test_other_chain_problems(line: int, row: str, expected: str) -> None:
    frame = pd.read_csv(io.StringIO(_replace_line(GOOD_CHAIN, line, row)))
    with pytest.raises(DataError) as info:
        validate_chain(frame, "chain.csv")
    assert expected in str(info.value)
