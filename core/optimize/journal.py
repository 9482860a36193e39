"""``journal.jsonl``: one line per finished evaluation, flushed as it happens; ``--resume`` reads it.

Line 1 is a header ``{"journal": 1, "fingerprint": ..., "options": {...}}``: the options that
decide the results.  Every later line is one finished task: ``{"kind", "scope", "key",
"point", "score" | "invalid", ...}``.  A run killed mid-write leaves at most one partial last
line, which ``read_journal`` ignores.  Resuming with different options is refused (one line,
exit 2) rather than mixing two runs' evaluations.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import IO, Any

from core.dto import ConfigError

JOURNAL = "journal.jsonl"
FORMAT = 1


def fingerprint(options: dict[str, Any]) -> str:
    text = json.dumps(options, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def result_key(kind: str, scope: dict[str, str], key: str) -> str:
    return f"{kind}|{scope['start']}..{scope['end']}|{key}"


def read_journal(folder: Path, options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Finished results of a previous run of the same options, by ``result_key``."""
    path = Path(folder) / JOURNAL
    if not path.is_file():
        raise ConfigError(f"--resume {folder}: no {JOURNAL} there; pass the folder of an optimizer run")
    done: dict[str, dict[str, Any]] = {}
    with path.open(encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    if not lines or not lines[0].strip():
        return done
    try:
        head = json.loads(lines[0])
    except ValueError:
        raise ConfigError(f"--resume {folder}: {JOURNAL} has no readable header; it is not an optimizer journal")\
            from None
    if head.get("journal") != FORMAT:
        raise ConfigError(f"--resume {folder}: {JOURNAL} format {head.get('journal')!r} is not {FORMAT}")
    if head.get("fingerprint") != fingerprint(options):
        old = head.get("options", {})
        diff = sorted(k for k in set(old) | set(options)
                      if json.dumps(old.get(k), sort_keys=True, default=str)
                      != json.dumps(options.get(k), sort_keys=True, default=str))
        raise ConfigError(f"--resume {folder}: the journal was written with different options "
                          f"({', '.join(diff[:4]) or 'options'}); rerun with the same options or start a new run")
    for line in lines[1:]:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            continue  # the partial last line of a killed run
        if isinstance(row, dict) and "kind" in row and "key" in row and "scope" in row:
            done[result_key(row["kind"], row["scope"], row["key"])] = row
    return done


class Journal:
    """Append-only writer; ``write`` flushes every line to the OS at once."""

    def __init__(self, folder: Path, options: dict[str, Any], resume: bool) -> None:
        self.path = Path(folder) / JOURNAL
        exists = self.path.is_file() and self.path.stat().st_size > 0
        self._fh: IO[str] = self.path.open("a", encoding="utf-8")
        if resume and exists:
            self._trim_partial()
        if not (resume and exists):
            self._fh.write(json.dumps({"journal": FORMAT, "fingerprint": fingerprint(options), "options": options},
                                      sort_keys=True, default=str) + "\n")
            self._fh.flush()

    def _trim_partial(self) -> None:
        """A killed run may have left half a line: start the next one on a fresh line."""
        with self.path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() == 0:
                return
            fh.seek(-1, os.SEEK_END)
            last = fh.read(1)
        if last != b"\n":
            self._fh.write("\n")
            self._fh.flush()

    def write(self, row: dict[str, Any]) -> None:
        self._fh.write(json.dumps(row, separators=(",", ":"), default=str) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()
