"""Print the market-model checks of SPEC §10 over 1999–2018 (figures quoted in README).

    python scripts/market_model_stats.py [--seed 42] [--start 1999-01-04] [--end 2018-12-31]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_factory.embedded import EmbeddedMarket  # noqa: E402
from data_factory.model_stats import (  # noqa: E402
    PathStats,
    brownian_check,
    daily_spot_vix_corr,
    path_statistics,
    spread_by_vix,
    stress_day_iv,
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--start", default=None)
    ap.add_argument("--end", default=None)
    args = ap.parse_args(argv)
    market = EmbeddedMarket(seed=args.seed)
    daily = market.daily_bars(args.start, args.end)
    vix = market.vix(args.start, args.end)
    stats = path_statistics(daily, vix["vix"].to_numpy(), args.seed, market.prior_variance())
    head = ["path", "corr 10:00~close", "first 30 min agree", "10->11 momentum bp", "t", "lag-1 AC 5 min"]
    print(" | ".join(head))
    for name, value in stats.items():
        if isinstance(value, PathStats):
            print(" | ".join([name, *value.row()]))
    real = vix[~vix["is_proxy"]]
    print(f"corr of 5-minute log changes spot~VIX (bridge): {stats['corr_5min_spot_vix']:.3f}; "
          f"daily, real VIX days: {daily_spot_vix_corr(daily.loc[real.index], real['vix']):.3f}")
    iv = stress_day_iv(market)
    print(f"30-day ATM IV at 15:55 / real VIX close, median: {iv['stress_median']:.3f} on the 20 largest VIX "
          f"up-days 2014-2018, {iv['calm_median']:.3f} on calm days (|VIX change| < 3%)")
    sp = spread_by_vix(market)
    print(f"16-delta ~30-DTE relative spread at 10:00, median: {sp['high_vix_median']:.2%} when VIX >= 30, "
          f"{sp['calm_median']:.2%} when VIX 11-13 ({sp['ratio']:.2f}x)")
    bm = brownian_check()
    print("bridge on 6,000 simulated Brownian days with known sigma (truth / bridged): "
          + ", ".join(f"{k} {a:.3f} / {b:.3f}" for k, (a, b) in bm.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
