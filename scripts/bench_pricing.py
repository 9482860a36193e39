"""Print the pricing benchmark (numpy vs QuantLib loop) as a table and as JSON.

    python scripts/bench_pricing.py [n_vectorised] [n_quantlib]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from rich.console import Console  # noqa: E402 - after the path set-up
from rich.table import Table  # noqa: E402

from core.bench.pricing import benchmark_pricing  # noqa: E402


def main(argv: list[str]) -> None:
    sizes = [int(a) for a in argv[:2]]
    result = benchmark_pricing(*sizes)
    table = Table(title="European price + 5 Greeks")
    for column in ("engine", "options", "seconds", "options/s"):
        table.add_column(column, justify="right")
    table.add_row("numpy bsm_greeks (one call)", f"{result['n_vectorised']:,}", f"{result['numpy_seconds']:.3f}",
                  f"{result['numpy_options_per_s']:,.0f}")
    table.add_row("QuantLib loop", f"{result['n_quantlib']:,}", f"{result['quantlib_seconds']:.3f}",
                  f"{result['quantlib_options_per_s']:,.0f}")
    console = Console()
    console.print(table)
    console.print(f"speedup x{result['speedup']:,.0f}; max |price diff| {result['max_abs_price_diff']:.2e}")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
