"""The regime selector beside the plain iron condor on one PDF page (issue 15, item 8).

    python scripts/selector_comparison.py [--bt-start 2014-01-02] [--bt-end 2018-12-31] [--out DIR] [--force]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import build_config  # noqa: E402
from core.dto import QuantorError  # noqa: E402
from core.outputs.comparison import compare  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bt-start", default="2014-01-02")
    ap.add_argument("--bt-end", default="2018-12-31")
    ap.add_argument("--out", default="reports/selector_comparison")
    ap.add_argument("--force", action="store_true", help="replace a previous comparison folder")
    args = ap.parse_args(argv)
    try:
        cfg = build_config(None, {"backtest.start": args.bt_start, "backtest.end": args.bt_end, "run.no_plot": True})
        got = compare(cfg, args.out, force=args.force)
    except QuantorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for side in ("plain", "selector"):
        m = got[side]["metrics"]
        print(f"{side:9s} return {m['total_return']:+.2%}, max DD {m['max_drawdown_pct']:.2%}, "
              f"Sharpe {m['sharpe']:.2f}, trades {m['trades']}")
    print(f"written to {args.out}/comparison.pdf")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
