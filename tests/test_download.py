"""``data download --source alpaca`` against a fake Alpaca market-data server on 127.0.0.1 (the real
alpaca-py clients, ``url_override``): pagination to the end, a 429 storm that slows the download
down, resume after a kill, faults ending in one line, credentials written nowhere."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from aiohttp import web

from core.dto import DataError
from core.main import main
from data_factory.alpaca_download import COMPLETE, Fetcher, RateLimiter, download

KEY, SECRET = "PKTESTKEY123", "s3cr3t-never-written"
DAYS = (dt.date(2024, 3, 4), dt.date(2024, 3, 5), dt.date(2024, 3, 6))


class FakeData:
    """Stock bars, option contracts and option bars with pagination (page = 20 rows) and faults."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail_429 = 0  # answer the next N requests with 429
        self.retry_after: str | None = None
        self.fail_500 = 0
        self.break_field = False

    def _fault(self) -> web.Response | None:
        if self.fail_429 > 0:
            self.fail_429 -= 1
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return web.json_response({"code": 42910000, "message": "rate limit exceeded"}, status=429,
                                     headers=headers)
        if self.fail_500 > 0:
            self.fail_500 -= 1
            return web.Response(status=500, text="<html>oops</html>")
        return None

    @staticmethod
    def _page(rows: list[Any], token: str | None) -> tuple[list[Any], str | None]:
        start = int(token or 0)
        nxt = start + 20
        return rows[start:nxt], (str(nxt) if nxt < len(rows) else None)

    @staticmethod
    def _minute_bars(day: dt.date, seed: int) -> list[dict[str, Any]]:
        t0 = pd.Timestamp(f"{day} 09:30", tz="America/New_York")
        rng = np.random.default_rng(seed)
        px = 500 + np.cumsum(rng.normal(0, 0.2, 78))
        return [{"t": (t0 + pd.Timedelta(minutes=5 * i)).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "o": float(p), "h": float(p) + 0.1, "l": float(p) - 0.1, "c": float(p), "v": 1000 + i, "n": 10,
                 "vw": float(p)} for i, p in enumerate(px)]

    async def stock_bars(self, request: web.Request) -> web.Response:
        self.calls.append(request.path)
        assert request.headers["APCA-API-KEY-ID"] == KEY
        if (fault := self._fault()) is not None:
            return fault
        q = request.query
        day = pd.Timestamp(q["start"]).tz_convert("America/New_York").date()
        rows, token = self._page(self._minute_bars(day, day.toordinal()), q.get("page_token"))
        bars = [{k: v for k, v in r.items() if k != "c"} for r in rows] if self.break_field else rows
        return web.json_response({"bars": {q["symbols"]: bars}, "next_page_token": token})

    async def contracts(self, request: web.Request) -> web.Response:
        self.calls.append(request.path)
        if (fault := self._fault()) is not None:
            return fault
        q = request.query
        day = dt.date.fromisoformat(q["expiration_date_gte"])
        expiry = day + dt.timedelta(days=(4 - day.weekday()) % 7 or 7)
        rows = [{"id": f"00000000-0000-0000-0000-{i:012d}",
                 "symbol": f"SPY{expiry:%y%m%d}{'CP'[i % 2]}{(480 + i) * 1000:08d}",
                 "name": "x", "status": "active", "tradable": True, "expiration_date": expiry.isoformat(),
                 "root_symbol": "SPY", "underlying_symbol": "SPY",
                 "underlying_asset_id": "b28f4066-5c6d-479b-a2af-85dc1a8f16fb", "type": "call" if i % 2 == 0 else "put",
                 "style": "american", "strike_price": str(480 + i), "size": "100"} for i in range(45)]
        page, token = self._page(rows, q.get("page_token"))
        return web.json_response({"option_contracts": page, "next_page_token": token})

    async def option_bars(self, request: web.Request) -> web.Response:
        self.calls.append(request.path)
        if (fault := self._fault()) is not None:
            return fault
        q = request.query
        day = pd.Timestamp(q["start"]).tz_convert("America/New_York").date()
        symbols = q["symbols"].split(",")
        flat = [(s, r) for j, s in enumerate(symbols) for r in self._minute_bars(day, j)[:3]]
        page, token = self._page(flat, q.get("page_token"))
        out: dict[str, list[Any]] = {}
        for s, r in page:
            out.setdefault(s, []).append(r)
        return web.json_response({"bars": out, "next_page_token": token})

    async def snapshots(self, request: web.Request) -> web.Response:
        self.calls.append(request.path)
        if (fault := self._fault()) is not None:
            return fault
        rows = {f"SPY240308{'CP'[i % 2]}{(480 + i) * 1000:08d}": {
            "latestQuote": {"t": "2024-03-06T20:59:59Z", "bp": 1.0 + i / 100, "bs": 5, "ap": 1.05 + i / 100, "as": 7},
            "latestTrade": {"t": "2024-03-06T20:59:00Z", "p": 1.02, "s": 1}, "impliedVolatility": 0.15 + i / 1000,
            "greeks": {"delta": 0.5, "gamma": 0.01, "rho": 0.01, "theta": -0.1, "vega": 0.2}} for i in range(30)}
        items = sorted(rows.items())
        start = int(request.query.get("page_token") or 0)
        page = dict(items[start:start + 20])
        token = str(start + 20) if start + 20 < len(items) else None
        return web.json_response({"snapshots": page, "next_page_token": token})


@pytest.fixture
def fake() -> Iterator[tuple[FakeData, str]]:
    state = FakeData()
    app = web.Application()
    app.router.add_get("/v2/stocks/bars", state.stock_bars)
    app.router.add_get("/v2/options/contracts", state.contracts)
    app.router.add_get("/v1beta1/options/bars", state.option_bars)
    app.router.add_get("/v1beta1/options/snapshots/{sym}", state.snapshots)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.SockSite(runner, sock).start())
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)


def _quick(sleeps: list[float]) -> Fetcher:
    return Fetcher(RateLimiter(190, sleep=sleeps.append), sleep=sleeps.append)


def test_download_follows_pagination_to_the_end(fake: tuple[FakeData, str], tmp_path: Path) -> None:
    state, url = fake
    res = download(["SPY"], DAYS[0], DAYS[-1], "5Min", tmp_path / "d", options=True, url=url, progress=False,
                   fetcher=_quick([]))
    assert res.days_done == 3 and res.days_skipped == 0
    bars = pd.read_parquet(tmp_path / "d" / "stocks" / "underlying=SPY" / f"date={DAYS[1]}" / "bars_5Min.parquet")
    assert len(bars) == 78  # 4 pages of 20
    assert bars["t"].is_monotonic_increasing and bars["t"].dt.tz is not None
    opt = tmp_path / "d" / "options" / "underlying=SPY" / f"date={DAYS[1]}"
    assert len(pd.read_parquet(opt / "contracts.parquet")) == 45  # 3 pages
    ob = pd.read_parquet(opt / "option_bars_5Min.parquet")
    assert ob["symbol"].nunique() == 45 and len(ob) == 45 * 3  # 7 pages across one batch
    assert (opt / COMPLETE).is_file()


def test_a_429_storm_slows_down_instead_of_failing(fake: tuple[FakeData, str], tmp_path: Path) -> None:
    state, url = fake
    state.fail_429 = 6
    sleeps: list[float] = []
    fetch = _quick(sleeps)
    res = download(["SPY"], DAYS[0], DAYS[0], "5Min", tmp_path / "d", url=url, progress=False, fetcher=fetch)
    assert res.days_done == 1 and fetch.waits_429 == 6
    assert fetch.slept_429 == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0]  # exponential back-off, capped
    state.fail_429, state.retry_after = 2, "7"
    download(["SPY"], DAYS[1], DAYS[1], "5Min", tmp_path / "d", url=url, progress=False, fetcher=fetch)
    assert fetch.slept_429[-2:] == [7.0, 7.0]  # Retry-After is honoured
    assert sum(sleeps) >= sum(fetch.slept_429)  # every wait was slept


def test_rate_limiter_keeps_under_the_limit() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    lim = RateLimiter(3, clock=lambda: now[0], sleep=sleep)
    for _ in range(7):
        lim.wait()
        now[0] += 1.0
    assert len(slept) == 2  # the 4th and 7th request waited for the window
    assert all(s > 56 for s in slept)


def test_download_resumes_after_a_kill(fake: tuple[FakeData, str], tmp_path: Path) -> None:
    state, url = fake

    class Killed(Exception):
        pass

    class KillAfter(Fetcher):
        def get(self, client: Any, path: str, params: dict[str, Any]) -> dict[str, Any]:
            if self.requests_sent >= 6:  # 4 pages of day 1, then die inside day 2
                raise Killed()
            return super().get(client, path, params)

    with pytest.raises(Killed):
        download(["SPY"], DAYS[0], DAYS[-1], "5Min", tmp_path / "d", url=url, progress=False,
                 fetcher=KillAfter(RateLimiter(190, sleep=lambda s: None)))
    root = tmp_path / "d" / "stocks" / "underlying=SPY"
    assert (root / f"date={DAYS[0]}" / COMPLETE).is_file()
    assert not (root / f"date={DAYS[1]}" / COMPLETE).exists()
    state.calls.clear()
    res = download(["SPY"], DAYS[0], DAYS[-1], "5Min", tmp_path / "d", url=url, progress=False, fetcher=_quick([]))
    assert (res.days_done, res.days_skipped) == (2, 1)
    assert len(state.calls) == 8  # day 1 not asked again; days 2 and 3 whole (4 pages each)
    for day in DAYS:
        assert len(pd.read_parquet(root / f"date={day}" / "bars_5Min.parquet")) == 78


def test_faults_end_in_one_line_and_nothing_trusted(fake: tuple[FakeData, str], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    state, url = fake
    state.fail_500 = 10
    with pytest.raises(DataError, match=r"alpaca /stocks/bars: HTTP 500 after 0 rate-limit waits and 3 retries"):
        download(["SPY"], DAYS[0], DAYS[0], "5Min", tmp_path / "d", url=url, progress=False, fetcher=_quick([]))
    assert not (tmp_path / "d" / "stocks" / "underlying=SPY" / f"date={DAYS[0]}" / COMPLETE).exists()
    state.fail_500 = 0
    state.break_field = True  # the API changes its schema: a bar without its close
    with pytest.raises(DataError, match=r"alpaca bars lack field\(s\) \['c'\]; the API changed\?"):
        download(["SPY"], DAYS[0], DAYS[0], "5Min", tmp_path / "d", url=url, progress=False, fetcher=_quick([]))
    assert not list((tmp_path / "d").rglob(COMPLETE)) and not list((tmp_path / "d").rglob("*.parquet"))
    rc = main(["--mode", "data", "download", "--source", "alpaca", "--symbols", "SPY", "--start", "2024-03-04",
               "--end", "2024-03-04", "--timeframe", "5Min", "--data-url", "http://127.0.0.1:9", "--out",
               str(tmp_path / "e"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "network error" in err[0]


def test_cli_download_and_no_secret_written(fake: tuple[FakeData, str], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    _, url = fake
    rc = main(["--mode", "data", "download", "--source", "alpaca", "--symbols", "SPY", "--start", "2024-03-04",
               "--end", "2024-03-05", "--timeframe", "5Min", "--options", "--data-url", url, "--out",
               str(tmp_path / "cli"), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    assert "downloaded 2 day(s)" in capsys.readouterr().out
    for p in (tmp_path / "cli").rglob("*"):
        if p.is_file():
            blob = p.read_bytes()
            assert SECRET.encode() not in blob and KEY.encode() not in blob


def test_pipeline_builds_files_that_backtest_end_to_end(fake: tuple[FakeData, str], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    _, url = fake
    cfg = tmp_path / "pipe.toml"
    out = tmp_path / "pipe"
    cfg.write_text(f'[pipeline]\nsymbols = ["SPY"]\nstart = "2024-03-04"\nend = "2024-03-08"\ntimeframe = "5Min"\n'
                   f'out = "{out}"\ndata_url = "{url}"\n')
    assert main(["--mode", "data", "pipeline", "--config", str(cfg), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "exact match" in text and "iv_conf" in text and "days kept: 4" in text
    assert (out / "report" / "alignment.pdf").read_bytes().startswith(b"%PDF")
    first = (out / "expanded" / "SPY" / "SPY_chains_expanded.parquet").read_bytes()
    assert main(["--mode", "data", "pipeline", "--config", str(cfg), "--no-progress"]) == 0  # idempotent
    assert "skipped 5 complete day(s)" in capsys.readouterr().out
    assert (out / "expanded" / "SPY" / "SPY_chains_expanded.parquet").read_bytes() == first
    rc = main(["--mode", "backtest", "--spot-data", str(out / "merged" / "SPY" / "SPY_bars_5Min.parquet"),
               "--options-data", str(out / "expanded" / "SPY" / "SPY_chains_expanded.parquet"),
               "--bt-start", "2024-03-05", "--bt-end", "2024-03-08", "--no-plot", "--no-progress",
               "--out", str(tmp_path / "bt")])
    assert rc == 0, capsys.readouterr().err
    run = (tmp_path / "bt" / "run.json").read_text()
    assert '"chains_modelled": true' in run and "MODELLED" in run


def test_chain_snapshots_are_kept_for_today_only(fake: tuple[FakeData, str], tmp_path: Path) -> None:
    state, url = fake
    download(["SPY"], DAYS[1], DAYS[2], "5Min", tmp_path / "d", options=True, url=url, progress=False,
             fetcher=_quick([]), today=DAYS[2])
    opt = tmp_path / "d" / "options" / "underlying=SPY"
    assert not (opt / f"date={DAYS[1]}" / "chain_snapshots.parquet").exists()  # past days have none
    snaps = pd.read_parquet(opt / f"date={DAYS[2]}" / "chain_snapshots.parquet")
    assert len(snaps) == 30  # two pages
    row = snaps.sort_values("strike").iloc[0]
    assert (row["expiration"], row["strike"], row["bid"], row["ask"]) == (dt.date(2024, 3, 8), 480.0, 1.0, 1.05)
    assert {"implied_volatility", "delta", "gamma", "theta", "vega"} <= set(snaps.columns)
