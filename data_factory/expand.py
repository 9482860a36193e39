"""``data expand``: intraday option quotes synthesised from end-of-day chain snapshots and real
intraday spot bars.

Rule, per contract of the last snapshot taken before the session's first bar (a snapshot stamped at
a session's 16:00 prices the next session's bars):

* **IV** — the snapshot's smile of the same expiry and type, read at the contract's *current*
  forward log-moneyness ``k_t = ln(K / (S_t e^{(r-q) tau_t}))`` (linear in ``k`` between the
  listed strikes, flat beyond): sticky moneyness, held in time until the next snapshot.  The
  issue asked for IV interpolated in time *between* snapshots; that would put the next
  snapshot's (the session's closing) implied vols into every bar of the session, so the rule
  holds the last known smile instead and lets the moneyness move with the real spot.
* **Price and Greeks** — ``analytics.pricing.bsm_greeks(S_t, K, tau_t, r, q, IV)`` with
  ``tau_t = (expiry 16:00 New York - t) / 365 days`` (theta per calendar day, vega per vol point).
* **Quotes** — ``data_factory.chains.quote_bid_ask`` (the embedded market's spread model): width
  from the price, standardised moneyness and tenor, times the market-state factor
  ``spread_widening`` with the snapshot's 30-day ATM volatility (``vendor_chains.vix_proxy``) as
  the vol level and the move of the spot since that snapshot.
* Contracts with ``0 <= DTE <= dte_max`` at the bar; expired ones are dropped.

Output: one Parquet file in the ``data export`` chain layout (``quote_date`` = bar close, New York),
one row group per session, with file metadata ``quantor.modelled = "expanded"`` and the rule; a
``FilesMarket`` reading it flags its chains as modelled (``SourceInfo.chains_modelled``) in every
run record.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analytics.pricing import bsm_greeks
from core.dto import DataError
from data_factory.chains import quote_bid_ask, spread_widening
from data_factory.expand_meta import MODELLED_KEY, RULE_KEY
from data_factory.export import CHAIN_SCHEMA
from data_factory.out_folder import atomic_dir, check_target
from data_factory.vendor_chains import expiry_close_ns, vix_proxy

RULE = ("IV: last snapshot before the bar, smile of the same expiry and type read at the current forward "
        "log-moneyness (sticky moneyness, held in time); price/Greeks: BSM at the bar's spot; quotes: the "
        "embedded spread model")
YEAR_NS = 365.0 * 86_400 * 1e9


@dataclass(frozen=True, slots=True)
class ExpandResult:
    out_file: Path
    bars: int
    rows: int
    sessions: int
    skipped_sessions: int  # bars with no earlier snapshot (the first session of the file)

    def summary(self) -> str:
        return (f"wrote {self.rows} modelled quotes at {self.bars} bars of {self.sessions} sessions to "
                f"{self.out_file} ({self.skipped_sessions} session(s) before the first snapshot skipped)")


def _smile(snap: pd.DataFrame, spot: float, rate: float, q: float) -> dict[tuple[int, bool], tuple[np.ndarray, ...]]:
    """Per (expiry day, is_call): forward log-moneyness at the snapshot, IV, strike — sorted by k."""
    out: dict[tuple[int, bool], tuple[np.ndarray, ...]] = {}
    for (exp_day, is_call), grp in snap.groupby(["exp_day", "is_call"], sort=True):
        iv = grp["implied_volatility"].to_numpy(float)
        ok = np.isfinite(iv) & (iv > 0) & (grp["tau"].to_numpy() > 0)
        if not ok.any():
            continue
        tau = grp["tau"].to_numpy()[ok]
        k = np.log(grp["strike"].to_numpy()[ok] / (spot * np.exp((rate - q) * tau)))
        order = np.argsort(k)
        out[(int(exp_day), bool(is_call))] = (k[order], iv[ok][order], grp["strike"].to_numpy()[ok][order])
    return out


def expand_session(snap: pd.DataFrame, snap_spot: float, atm30: float, bars: pd.DataFrame, rate: float, q: float,
                   dte_max: int, underlying: str) -> pd.DataFrame:
    """Modelled quotes of every contract of one snapshot at each bar of ``bars`` (one session)."""
    smiles = _smile(snap, snap_spot, rate, q)
    if not smiles or bars.empty:
        return pd.DataFrame(columns=CHAIN_SCHEMA.names)
    labels = pd.DatetimeIndex(bars.index)
    t_ns = labels.tz_convert("UTC").asi8
    day = labels[0].tz_convert("America/New_York").date()
    day_num = (day - dt.date(1970, 1, 1)).days
    spot = bars["close"].to_numpy(float)
    frames = []
    for (exp_day, is_call), (k_snap, iv_snap, strikes) in smiles.items():
        if not 0 <= exp_day - day_num <= dte_max:
            continue
        close_ns = int(expiry_close_ns(np.array([exp_day]))[0])
        tau = (close_ns - t_ns) / YEAR_NS  # per bar
        live = tau > 0
        if not live.any():
            continue
        s, tb, ts = spot[live], tau[live], labels[live]
        k_now = np.log(strikes[None, :] / (s[:, None] * np.exp((rate - q) * tb[:, None])))
        iv = np.interp(k_now.ravel(), k_snap, iv_snap).reshape(k_now.shape)
        n_bar, n_k = k_now.shape
        S = np.repeat(s, n_k)
        K = np.tile(strikes, n_bar)
        T = np.repeat(tb, n_k)
        g = bsm_greeks(S, K, T, rate, q, iv.ravel(), np.full(S.shape, is_call))
        z = k_now.ravel() / (iv.ravel() * np.sqrt(T))
        widen = spread_widening(np.full(S.shape, 100.0 * atm30), S, np.full(S.shape, snap_spot),
                                np.full(S.shape, atm30))
        bid, ask = quote_bid_ask(g.price, z, T, widen)
        frames.append(pd.DataFrame({
            "underlying_symbol": underlying, "quote_date": np.repeat(ts, n_k),
            "expiration": dt.date(1970, 1, 1) + dt.timedelta(days=exp_day), "strike": K,
            "option_type": "call" if is_call else "put", "bid": bid, "ask": ask, "underlying_price": S,
            "implied_volatility": iv.ravel(), "delta": g.delta, "gamma": g.gamma, "theta": g.theta,
            "vega": g.vega, "volume": np.nan, "open_interest": np.nan}))
    if not frames:
        return pd.DataFrame(columns=CHAIN_SCHEMA.names)
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["quote_date", "expiration", "option_type", "strike"], kind="stable").reset_index(drop=True)


def expand_chains(chain: pd.DataFrame, bars: pd.DataFrame, out_dir: str | Path, underlying: str, rate: float,
                  q: float, dte_max: int = 60, force: bool = False) -> ExpandResult:
    """Expand prepared end-of-day chain rows (``vendor_chains.prepare_chain``) onto intraday ``bars``
    (close-labelled, tz-aware) into ``out_dir/<U>_chains_expanded.parquet`` (+ ``expand.json``), written
    whole or not at all under the one output-folder rule (module doc)."""
    if chain.empty:
        raise DataError("expand: the options file has no rows in the range; pick dates it covers")
    if bars.empty:
        raise DataError("expand: the spot file has no intraday bars in the range; pick dates it covers")
    folder = Path(out_dir)
    check_target(folder, force)  # before any work
    snaps = np.sort(chain["quote_ns"].unique())
    atm = vix_proxy(chain, rate, q)  # per snapshot day: 30-day ATM vol (x100)
    atm_by_day = dict(zip(pd.DatetimeIndex(atm.index).date, atm["vix"].to_numpy() / 100.0, strict=True))
    labels = pd.DatetimeIndex(bars.index)
    t_ns = labels.tz_convert("UTC").asi8
    session = labels.tz_convert("America/New_York").normalize()
    writer_schema = CHAIN_SCHEMA.with_metadata({MODELLED_KEY: b"expanded", RULE_KEY: RULE.encode()})
    rows = sessions = skipped = 0
    target = folder / f"{underlying}_chains_expanded.parquet"
    with atomic_dir(folder, force=force) as tmp:
        with pq.ParquetWriter(tmp / target.name, writer_schema) as writer:
            for day in pd.unique(session):
                mask = session == day
                first_ns = int(t_ns[mask][0])
                i = int(np.searchsorted(snaps, first_ns, side="left")) - 1  # strictly before the session's bars
                if i < 0:
                    skipped += 1
                    continue
                snap_rows = chain.loc[chain["quote_ns"].to_numpy() == snaps[i]]
                snap_day = pd.Timestamp(int(snaps[i]), tz="UTC").tz_convert("America/New_York").date()
                atm30 = float(atm_by_day.get(snap_day, np.nan))
                if not np.isfinite(atm30):
                    atm30 = float(np.nanmedian(snap_rows["implied_volatility"]))
                frame = expand_session(snap_rows, float(snap_rows["underlying_price"].iloc[0]), atm30,
                                       bars.loc[mask], rate, q, dte_max, underlying)
                if frame.empty:
                    continue
                frame["quote_date"] = pd.DatetimeIndex(frame["quote_date"]).tz_convert("America/New_York")
                writer.write_table(pa.Table.from_pandas(frame, schema=writer_schema, preserve_index=False))
                rows += len(frame)
                sessions += 1
        (tmp / "expand.json").write_text(json.dumps({"modelled": True, "rule": RULE, "rows": rows,
                                                      "sessions": sessions, "rate": rate, "dividend_yield": q},
                                                     indent=2) + "\n", encoding="utf-8")
    return ExpandResult(target, int(len(bars)), rows, sessions, skipped)
