"""Know what a data file is before reading it: format sniffing and a guarded byte stream.

``sniff(path)`` reads at most the first 64 KiB and decides, from the bytes and not the name:

* empty file, folder, unreadable file -> ``DataError``;
* gzip / zip / bzip2 / xz / zstd magic bytes -> ``DataError`` (decompress it first);
* Parquet (``PAR1`` at the start) -> ``FileKind(parquet=True)``; a ``.parquet`` name without the
  magic bytes is refused;
* text: must decode as UTF-8 (a BOM is allowed), hold no NUL byte, and have a header line that
  ends within the first 64 KiB; the delimiter is the most frequent of ``, ; TAB |`` in the header.

``GuardedStream`` wraps the raw file for the CSV reader and stops the read at the first NUL
byte or at a line longer than ``MAX_LINE_BYTES``, naming the line -- so a file of any size
with junk in it is rejected after reading only as far as the junk, in bounded memory.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from core.dto import DataError

SNIFF_BYTES = 64 * 1024
MAX_LINE_BYTES = 64 * 1024
PARQUET_MAGIC = b"PAR1"
_COMPRESSED = ((b"\x1f\x8b", "gzip"), (b"PK\x03\x04", "zip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"),
               (b"\x28\xb5\x2f\xfd", "zstd"))
DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


@dataclass(frozen=True, slots=True)
class FileKind:
    """What ``sniff`` found: Parquet, or CSV text with its delimiter and encoding."""

    parquet: bool
    delimiter: str = ","
    encoding: str = "utf-8"


def _head(path: Path) -> bytes:
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a data file; pass the file inside it")
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path")
    try:
        with path.open("rb") as handle:
            return handle.read(SNIFF_BYTES)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc}); check its permissions") from None


def sniff(path: str | Path) -> FileKind:
    """Decide the file's format from its first bytes (rules in the module doc)."""
    p = Path(path)
    head = _head(p)
    if not head:
        raise DataError(f"{p.name}: the file is empty; export the data again")
    for magic, name in _COMPRESSED:
        if head.startswith(magic):
            raise DataError(f"{p.name}: is {name}-compressed; decompress it first (a .csv or .parquet file)")
    if head.startswith(PARQUET_MAGIC):
        return FileKind(parquet=True)
    if p.suffix.lower() in (".parquet", ".pq"):
        raise DataError(f"{p.name}: named Parquet but it is not a Parquet file (no PAR1 magic bytes); "
                        "rename it to .csv if it is text, or export it again")
    return _text_kind(p, head)


def _text_kind(p: Path, head: bytes) -> FileKind:
    nul = head.find(b"\x00")
    if nul >= 0:
        line = head.count(b"\n", 0, nul) + 1
        raise DataError(f"{p.name}: line {line} holds binary data (NUL bytes), not CSV text; "
                        "pass a CSV or Parquet file")
    newline = head.find(b"\n")
    if newline < 0 and len(head) >= SNIFF_BYTES:
        raise DataError(f"{p.name}: line 1 is longer than {SNIFF_BYTES // 1024} KiB, not a CSV header; "
                        "pass a CSV file with a header row")
    encoding = "utf-8-sig" if head.startswith(b"\xef\xbb\xbf") else "utf-8"
    try:
        text = head.decode(encoding)
    except UnicodeDecodeError as exc:
        if not (len(head) >= SNIFF_BYTES and exc.start >= len(head) - 4):  # not just a character cut at the edge
            line = head.count(b"\n", 0, exc.start) + 1
            raise DataError(f"{p.name}: line {line} is not UTF-8 text; save the file as UTF-8 CSV") from None
        text = head[:exc.start].decode(encoding)
    header = text.split("\n", 1)[0]
    header = header.rstrip("\r")
    if not header.strip():
        raise DataError(f"{p.name}: line 1 (the header) is empty; put the column names on line 1")
    counts = {d: header.count(d) for d in DELIMITERS}
    delimiter = max(DELIMITERS, key=lambda d: counts[d])
    if counts[delimiter] == 0:
        raise DataError(f"{p.name}: line 1 has a single column ('{header[:40]}'); expected comma-separated "
                        "column names such as ts,open,high,low,close,volume")
    return FileKind(parquet=False, delimiter=delimiter, encoding=encoding)


def delimiter_name(delimiter: str) -> str:
    return _DELIMITER_NAMES.get(delimiter, repr(delimiter))


class GuardedStream(io.RawIOBase):
    """Raw byte stream over a file that raises ``DataError`` at a NUL byte or an over-long line.

    The checks are C-speed ``bytes`` operations per block, so a valid file streams at full speed.
    """

    def __init__(self, path: Path, max_line: int = MAX_LINE_BYTES) -> None:
        super().__init__()
        self._path = path
        self._handle = path.open("rb")
        self._max_line = max_line
        self._line = 1  # line number at the start of the next block
        self._open_line = 0  # bytes since the last newline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]  # RawIOBase protocol
        data = self._handle.read(len(buffer))
        self._check(data)
        buffer[: len(data)] = data
        return len(data)

    def _check(self, data: bytes) -> None:
        if not data:
            return
        nul = data.find(b"\x00")
        if nul >= 0:
            line = self._line + data.count(b"\n", 0, nul)
            raise DataError(f"{self._path.name}: line {line} holds binary data (NUL bytes), not CSV text; "
                            "fix or drop the line")
        first = data.find(b"\n")
        last = data.rfind(b"\n")
        longest = self._open_line + (len(data) if first < 0 else first)
        if first >= 0:
            longest = max(longest, _longest_inner(data, first, last, self._max_line))
        if longest > self._max_line:
            raise DataError(f"{self._path.name}: a line at or after line {self._line} is longer than "
                            f"{self._max_line // 1024} KiB, not a CSV row; fix the file")
        newlines = data.count(b"\n")
        self._line += newlines
        self._open_line = self._open_line + len(data) if first < 0 else len(data) - last - 1

    def close(self) -> None:
        self._handle.close()
        super().close()


def _longest_inner(data: bytes, first: int, last: int, limit: int) -> int:
    """Longest complete line strictly inside ``data`` (between its first and last newline).

    Only computed when the block is large compared with the limit; otherwise no inner line can
    exceed it.
    """
    if last - first <= limit:
        return 0
    return max(len(part) for part in data[first + 1:last].split(b"\n"))
