"""Marks of a chain file written by ``data expand`` (modelled intraday quotes), readable without
importing the pricing stack."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

MODELLED_KEY = b"quantor.modelled"
RULE_KEY = b"quantor.expand_rule"


def is_expanded(path: str | Path) -> bool:
    """True for a Parquet chain file written by ``data_factory.expand.expand_chains``."""
    p = Path(path)
    if p.suffix.lower() != ".parquet" or not p.is_file():
        return False
    try:
        meta = pq.read_schema(p).metadata or {}
    except (OSError, pa.ArrowInvalid):
        return False
    return meta.get(MODELLED_KEY) == b"expanded"
