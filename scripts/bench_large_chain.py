"""Large-file benchmark (not run in CI): generate a >= 2 GB Parquet option-chain file for one year of
5-minute SPY bars, then time a one-month backtest that reads it by date range, and report the
peak memory of that backtest process.

    python scripts/bench_large_chain.py [--dir /tmp/quantor_big] [--gb 2.0] [--keep]

The chain has a snapshot at every 5-minute bar of 2018 (embedded bridge spot): every listed
expiry within 60 days, strikes +-15% of spot in $1 steps near the money, BSM prices from a smile
with a little random noise (so the file does not compress away).  Figures go to README.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics.pricing import bsm_greeks  # noqa: E402
from data_factory.embedded import EmbeddedMarket  # noqa: E402
from data_factory.export import CHAIN_SCHEMA  # noqa: E402
from data_factory.listing import listed_expiries  # noqa: E402

R, Q = 0.02, 0.018


def _day_rows(day: dt.date, bars: pd.DataFrame, rng: np.random.Generator) -> pa.Table:
    spot_open = float(bars["close"].iloc[0])
    strikes = np.arange(np.floor(spot_open * 0.85), np.ceil(spot_open * 1.15) + 1, 1.0)
    expiries = [e for e in listed_expiries(day) if 0 <= (e - day).days <= 60]
    t = pd.DatetimeIndex(bars.index)
    n_t, n_k, n_e = len(t), len(strikes), len(expiries)
    close_ns = np.array([pd.Timestamp(f"{e} 16:00", tz="America/New_York").value for e in expiries])
    tau = np.maximum((close_ns[None, :] - t.asi8[:, None]) / (365 * 86400e9), 1e-6)  # (t, e)
    s = bars["close"].to_numpy()[:, None, None, None]
    k = strikes[None, None, :, None]
    tt = tau[:, :, None, None]
    call = np.array([True, False])[None, None, None, :]
    shape = (n_t, n_e, n_k, 2)
    logm = np.log(k / s)
    iv = np.clip(0.16 - 0.35 * logm / np.sqrt(np.maximum(tt, 1 / 365)) * 0.1 + rng.normal(0, 0.003, shape), 0.05, 2)
    g = bsm_greeks(np.broadcast_to(s, shape), np.broadcast_to(k, shape), np.broadcast_to(tt, shape), R, Q, iv,
                   np.broadcast_to(call, shape))
    price = np.asarray(g.price)
    half = 0.005 + 0.01 * price
    bid = np.maximum(np.round(price - half, 2), 0.0)
    ask = np.maximum(np.round(price + half, 2), bid + 0.01)
    n = int(np.prod(shape))
    frame = {
        "underlying_symbol": pa.array(["SPY"] * n, pa.string()),
        "quote_date": pa.array(np.repeat(t.asi8, n_e * n_k * 2), pa.timestamp("ns", tz="America/New_York")),
        "expiration": pa.array(np.tile(np.repeat(np.array(expiries, dtype="datetime64[D]"), n_k * 2), n_t),
                               pa.date32()),
        "strike": np.broadcast_to(k, shape).ravel().astype(float),
        "option_type": pa.array(np.where(np.broadcast_to(call, shape).ravel(), "call", "put")),
        "bid": bid.ravel(), "ask": ask.ravel(), "underlying_price": np.broadcast_to(s, shape).ravel().astype(float),
        "implied_volatility": iv.ravel(), "delta": np.asarray(g.delta).ravel(), "gamma": np.asarray(g.gamma).ravel(),
        "theta": np.asarray(g.theta).ravel(), "vega": np.asarray(g.vega).ravel(),
        "volume": rng.integers(0, 500, n).astype(float), "open_interest": rng.integers(0, 20000, n).astype(float),
    }
    return pa.Table.from_pydict(frame, schema=CHAIN_SCHEMA)


def generate(folder: Path, gb: float) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    market = EmbeddedMarket(seed=7)
    bars = market.intraday_bars("2018-01-02", "2018-12-31", 5)
    spot = folder / "spy_5min.csv"
    out = bars.reset_index().rename(columns={"ts": "ts"})
    out["ts"] = [x.isoformat() for x in bars.index]
    out.to_csv(spot, index=False)
    chain = folder / "spy_chain_2018.parquet"
    rng = np.random.default_rng(7)
    days = pd.DatetimeIndex(bars.index).tz_localize(None).normalize()
    with pq.ParquetWriter(chain, CHAIN_SCHEMA, compression="snappy") as writer:
        for day in pd.unique(days):
            writer.write_table(_day_rows(pd.Timestamp(day).date(), bars[days == day], rng))
            if chain.stat().st_size >= gb * 1024**3:
                break
    return spot, chain


def backtest_month(spot: Path, chain: Path, folder: Path) -> dict[str, float]:
    code = (
        "import resource,subprocess,sys,time;"
        "t=time.perf_counter();"
        f"rc=subprocess.call([sys.executable,'{ROOT / 'core' / 'main.py'}','--mode','backtest','--spot-data','{spot}',"
        f"'--options-data','{chain}','--bt-start','2018-03-01','--bt-end','2018-03-29','--no-plot','--no-progress',"
        f"'--out','{folder / 'run'}','--force'],stdout=subprocess.DEVNULL);"
        "print(rc,time.perf_counter()-t,resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    rc, secs, kib = subprocess.check_output([sys.executable, "-c", code], text=True).split()
    return {"rc": int(rc), "seconds": float(secs), "peak_mib": int(kib) / 1024}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="/tmp/quantor_big")
    ap.add_argument("--gb", type=float, default=2.0)
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    args = ap.parse_args(argv)
    folder = Path(args.dir)
    if folder.exists() and any(folder.iterdir()):
        print(f"error: --dir {folder} is not empty; give a new folder (this script deletes what it creates)",
              file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    spot, chain = generate(folder, args.gb)
    gen = time.perf_counter() - t0
    meta = pq.ParquetFile(chain).metadata
    result = {"chain_file_gb": round(chain.stat().st_size / 1024**3, 2), "rows": meta.num_rows,
              "row_groups": meta.num_row_groups, "generate_seconds": round(gen, 1),
              **backtest_month(spot, chain, folder)}
    print(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return 0 if result["rc"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
