"""Print each regime's frequency per year on the embedded data (README "Regimes").

    python scripts/regime_table.py [--start 1999 --end 2018] [--seed 7] [--daily-only] [--days 2018]

Regimes come from the project's own feature pipeline (``intelligence.features.compute_features``
with the default run config's thresholds) on the five-minute bars of every session:

* ``day`` columns: % of sessions in each regime at the close (the session's last bar, whose
  close is the daily close; ``--daily-only`` computes the same from daily bars alone);
* ``5m`` columns: % of five-minute bars in each regime (the intraday drop rule fires bar by bar);
* ``crash days``: sessions with CRASH_MODE on at least one bar (the exit rule flattens the book
  on the first such bar), and the same count under the thresholds used before the calibration
  (VIX >= 35, drop >= 4%, VIX jump >= 20% below both SMAs with no VIX floor).

``--days YEAR`` lists that year's crash days with the rule that fired and its numbers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

import numpy as np  # noqa: E402 - after the path set-up
import pandas as pd  # noqa: E402

from core.config import build_config  # noqa: E402
from core.dto import Regime  # noqa: E402
from data_factory.embedded import EmbeddedMarket  # noqa: E402
from intelligence.features import FeatureParams, compute_features, session_close_regimes  # noqa: E402
from intelligence.pipeline import feature_params  # noqa: E402
from intelligence.regime import (  # noqa: E402
    REGIME_ORDER,
    UNKNOWN_CODE,
    RegimeThresholds,
    crash_reason,
    crash_triggers,
)

SHORT = {Regime.LOW_VOL_RANGE: "low", Regime.HIGH_VOL_RANGE: "high", Regime.BULL_TREND: "bull",
         Regime.BEAR_TREND: "bear", Regime.CRASH_MODE: "crash"}
LEGACY = RegimeThresholds(crash_vix=35.0, crash_vix_jump=0.20, crash_jump_vix_floor=1e-9, crash_drop=0.04)


def _shares(codes: pd.Series, years: pd.Index) -> pd.DataFrame:
    """% of rows per year in each regime (and unknown)."""
    out = {}
    for r in REGIME_ORDER:
        out[SHORT[r]] = (codes == REGIME_ORDER.index(r)).groupby(years).mean() * 100.0
    out["unk"] = (codes == UNKNOWN_CODE).groupby(years).mean() * 100.0
    return pd.DataFrame(out)


def regime_frames(market: EmbeddedMarket, start: str, end: str, params: FeatureParams,
                  daily_only: bool = False) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(per-session frame at the close, per-five-minute-bar frame or None) over [start, end]."""
    daily, vix = market.daily_bars(), market.vix()
    sessions = session_close_regimes(daily, vix, params).loc[start:end]
    if daily_only:
        return sessions, None
    bars = market.intraday_bars(sessions.index[0].date(), sessions.index[-1].date(), 5)
    frame = compute_features(bars, daily, vix, (5,), params=params)
    idx = pd.DatetimeIndex(bars.index)
    cols = {k: np.asarray(frame[k]) for k in ("regime", "crash_trigger", "vix", "vix_change", "day_return", "close",
                                              "d_sma_fast", "d_sma_slow")}
    intraday = pd.DataFrame(cols, index=idx).assign(day=idx.tz_localize(None).normalize())
    return sessions, intraday


def _legacy_crash_days(sessions: pd.DataFrame, intraday: pd.DataFrame | None, legacy: pd.DataFrame) -> pd.Series:
    """Crash days per year under the thresholds used before the calibration (any bar, or the close)."""
    if intraday is None:
        return (legacy["crash_trigger"] > 0).groupby(legacy.index.year).sum()
    trig = crash_triggers(intraday["close"], intraday["d_sma_fast"], intraday["d_sma_slow"], intraday["vix"],
                          intraday["vix_change"], intraday["day_return"], LEGACY)
    hit = pd.Series(trig > 0, index=intraday.index).groupby(intraday["day"].to_numpy()).max()
    return hit.groupby(pd.DatetimeIndex(hit.index).year).sum()


def table(sessions: pd.DataFrame, intraday: pd.DataFrame | None, legacy: pd.DataFrame) -> str:
    """Markdown table: per year, % per regime as ``day / 5m`` (or ``day`` alone), crash days now and before."""
    years = sessions.index.year
    day = _shares(sessions["regime"], years)
    bar = None if intraday is None else _shares(intraday["regime"], intraday["day"].dt.year)
    if intraday is not None:
        crash_any = intraday.groupby("day")["crash_trigger"].max() > 0
        crash_days = crash_any.groupby(crash_any.index.year).sum()
    else:
        crash_days = (sessions["crash_trigger"] > 0).groupby(years).sum()
    legacy_days = _legacy_crash_days(sessions, intraday, legacy)
    unit = "% day" if bar is None else "% day / 5m"
    head = ["year", *(f"{c} {unit}" for c in day.columns), "crash days", "crash days before calibration"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for y in day.index:
        cells = [f"{v:.1f}" if bar is None else f"{v:.1f} / {w:.1f}" for v, w in
                 zip(day.loc[y], day.loc[y] if bar is None else bar.loc[y], strict=True)]
        row = [str(y), *cells, str(int(crash_days.get(y, 0))), str(int(legacy_days.get(y, 0)))]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def crash_days(sessions: pd.DataFrame, intraday: pd.DataFrame | None, year: int) -> str:
    """One line per crash day of ``year``: the first bar's rule and numbers (or the close's)."""
    th = RegimeThresholds()
    if intraday is not None:
        rows = intraday[(intraday["crash_trigger"] > 0) & (intraday["day"].dt.year == year)]
        first = rows.groupby("day").head(1)
        return "\n".join(f"{ts:%Y-%m-%d %H:%M} {crash_reason(r.crash_trigger, r.vix, r.day_return, r.vix_change, th)}"
                         for ts, r in first.iterrows())
    rows = sessions[(sessions["crash_trigger"] > 0) & (sessions.index.year == year)]
    return "\n".join(f"{ts:%Y-%m-%d} close {crash_reason(r.crash_trigger, r.vix, r.day_return, r.vix_change, th)}"
                     for ts, r in rows.iterrows())


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--start", default="1999")
    ap.add_argument("--end", default="2018")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--daily-only", action="store_true")
    ap.add_argument("--days", type=int, default=None, help="list the crash days of this year")
    args = ap.parse_args(argv)
    params = feature_params(build_config(None, {}))
    market = EmbeddedMarket(seed=args.seed)
    sessions, intraday = regime_frames(market, args.start, args.end, params, args.daily_only)
    legacy_params = FeatureParams(**{**{f: getattr(params, f) for f in params.__slots__},
                                     "regime_thresholds": LEGACY})
    legacy = session_close_regimes(market.daily_bars(), market.vix(), legacy_params).loc[args.start:args.end]
    th = params.regime_thresholds
    print(f"CRASH_MODE: VIX >= {th.crash_vix:g}, or day <= -{th.crash_drop:.0%}, or VIX jump >= "
          f"{th.crash_vix_jump:.0%} at VIX >= {th.crash_jump_vix_floor:g} below SMA20 and SMA50; trend ADX >= "
          f"{th.trend_adx:g}; high vol VIX >= {th.high_vol_vix:g} or IV rank >= {th.high_vol_ivr:g}")
    print("% of sessions at the close (day) and of five-minute bars (5m); crash days = sessions with a CRASH_MODE bar"
          + (" (at the close: --daily-only)" if intraday is None else ""))
    print(table(sessions, intraday, legacy))
    if args.days is not None:
        print(crash_days(sessions, intraday, args.days))


if __name__ == "__main__":
    main(sys.argv[1:])
