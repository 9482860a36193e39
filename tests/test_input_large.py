"""Huge junk files are rejected fast and in bounded memory (issue 12: 2 s and 300 MB).

Each case runs ``--mode data describe`` in a fresh interpreter and reports the time of the
command (after imports) and the process's peak resident memory, imports included.  The files
are a few hundred MB but sparse (a hole reads as NUL bytes) or written from a repeated block,
so the test stays fast.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_SECONDS, MAX_RSS_MB = 2.0, 300.0
HEADER = b"ts,open,high,low,close,volume\n"
# peak RSS from VmHWM (per address space, reset by exec); ru_maxrss would inherit the parent's peak
PROBE = """
import json, sys, time
sys.path.insert(0, {root!r})
from core.main import main
t0 = time.perf_counter()
code = main(["--mode", "data", "describe", "--spot-data", {path!r}])
seconds = time.perf_counter() - t0
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
print(json.dumps({{"code": code, "seconds": seconds, "rss_mb": int(hwm.split()[1]) / 1024}}))
"""


def _valid_rows(n: int) -> bytes:
    rows = []
    for k in range(n):
        day, minute = divmod(k, 78)
        stamp = f"2018-01-{2 + day % 20:02d} {9 + (35 + 5 * minute) // 60:02d}:{(35 + 5 * minute) % 60:02d}:00"
        rows.append(f"{stamp},270,270.1,269.9,270,1000\n")
    return "".join(rows).encode()


def _sparse_after_valid_rows(path: Path, rows: int, size_mb: int) -> None:
    with path.open("wb") as handle:
        handle.write(HEADER + _valid_rows(rows))
        handle.truncate(size_mb * 1024 * 1024)  # a hole: NUL bytes on reading, no disk used


def _junk_text(path: Path, size_mb: int) -> None:
    block = b"garbage,more garbage,%%%,1,2,3\n" * (1 << 15)  # 1 MiB of text junk with newlines
    with path.open("wb") as handle:
        handle.write(HEADER)
        for _ in range(size_mb):
            handle.write(block)


@pytest.mark.parametrize(("maker", "expect"), [
    (lambda p: _sparse_after_valid_rows(p, 1, 400), "line 3 holds binary data"),  # caught by sniffing
    (lambda p: _sparse_after_valid_rows(p, 1500, 400), "holds binary data"),  # caught while streaming
    (lambda p: _junk_text(p, 120), "line 2, column 'ts'"),  # text junk, caught on the first rows
], ids=["sparse-400MB-at-once", "sparse-400MB-after-valid-rows", "text-junk-120MB"])
def test_huge_junk_file_is_rejected_in_bounded_time_and_memory(tmp_path: Path, maker, expect: str) -> None:
    path = tmp_path / "huge.csv"
    maker(path)
    assert path.stat().st_size >= 100 * 1024 * 1024
    done = subprocess.run([sys.executable, "-c", PROBE.format(root=str(ROOT), path=str(path))], capture_output=True,
                          text=True, timeout=120, check=False)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert result["code"] == 2
    assert len(errors) == 1 and expect in errors[0], done.stderr
    assert result["seconds"] < MAX_SECONDS, result
    assert result["rss_mb"] < MAX_RSS_MB, result
