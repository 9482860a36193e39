"""The production data pipeline: download -> validate -> merge -> expand -> describe, idempotent.

    python scripts/run_production_pipeline.py --config my.toml [--no-progress] [--debug]

The config file's ``[pipeline]`` section (symbols, start, end, timeframe, expand_minutes, out,
data_url, dte_max) drives it; the same as ``python core/main.py --mode data pipeline --config FILE``.
Credentials: ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY``.  See ``core/modes/pipeline.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.main import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(["--mode", "data", "pipeline", *sys.argv[1:]]))
