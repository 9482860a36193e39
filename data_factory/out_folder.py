"""Output folders that never cost the user a file: one rule for every mode that writes.

The implementation lives here, in ``data_factory`` (the lowest room that writes folders: ``data
export``); ``core.outputs.atomic`` re-exports it for the drivers, so every mode uses this one rule.

The rule (``check_target``):

* a target that does not exist, or an empty folder, is written;
* a folder holding a previous run of this tool (it carries the marker file ``.quantor-run``
  that ``atomic_dir`` writes) is replaced only with ``force=True`` (``--force``), and only
  when it holds nothing but the files that run wrote;
* anything else -- a folder with files this tool did not write, a file, the current folder
  or one above it -- is refused with a one-line :class:`core.dto.ConfigError` (exit 2)
  before anything is touched.

Every output is written whole or not at all: ``atomic_dir`` builds the folder under a hidden
temporary name beside the target and renames it into place at the end; on any failure
(including Ctrl-C) only that temporary folder is removed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.dto import ConfigError

RUN_MARKER = ".quantor-run"
MARKER_FORMAT = "quantor-run/1"


def _listing(folder: Path) -> list[str]:
    """Relative paths of every file below ``folder`` (sorted, POSIX separators)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())


def is_previous_run(folder: Path) -> bool:
    """True when ``folder`` carries the marker a run of this tool writes."""
    return (Path(folder) / RUN_MARKER).is_file()


def _foreign_files(folder: Path) -> list[str]:
    """Files in a previous run folder that the run did not write (its marker lists what it wrote)."""
    try:
        marker = json.loads((folder / RUN_MARKER).read_text(encoding="utf-8"))
        written = set(marker.get("files", []))
    except (OSError, ValueError, AttributeError):
        written = set()
    return [f for f in _listing(folder) if f != RUN_MARKER and f not in written]


def _writable_ancestor(path: Path) -> Path:
    node = path
    while not node.exists() and node != node.parent:
        node = node.parent
    return node


def check_target(target: str | Path, force: bool = False, option: str = "--out") -> Path:
    """Raise ``ConfigError`` when writing ``target`` could lose a file (rule in the module doc).

    Returns the absolute target.  Call it before a long run so a refusal costs nothing.
    """
    path = Path(target).expanduser()
    absolute = path.resolve()
    here = Path.cwd().resolve()
    if absolute == here or absolute in here.parents:
        raise ConfigError(f"{option} {target}: is the current folder or one above it; "
                          "choose a new folder such as reports/my-run")
    if absolute.exists() or absolute.is_symlink():
        if not absolute.is_dir():
            raise ConfigError(f"{option} {target}: is a file, not a folder; choose a new folder name")
        if any(absolute.iterdir()):
            if not is_previous_run(absolute):
                raise ConfigError(f"{option} {target}: folder exists and holds files this tool did not write; "
                                  "choose a new or empty folder (nothing was changed)")
            if not force:
                raise ConfigError(f"{option} {target}: holds a previous run; add --force to replace it "
                                  "or choose a new folder")
            foreign = _foreign_files(absolute)
            if foreign:
                raise ConfigError(f"{option} {target}: the previous run folder also holds {foreign[0]!r}, which "
                                  "this tool did not write; move it out first (nothing was changed)")
    ancestor = _writable_ancestor(absolute.parent)
    if not ancestor.is_dir():
        raise ConfigError(f"{option} {target}: {ancestor} is a file, not a folder; choose another place")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {target}: {ancestor} is not writable; choose a folder you can write to")
    return absolute


def _write_marker(folder: Path) -> None:
    files = _listing(folder)
    (folder / RUN_MARKER).write_text(json.dumps({"format": MARKER_FORMAT, "files": files}, indent=1),
                                     encoding="utf-8")


def _replace(tmp: Path, target: Path) -> None:
    """Move ``tmp`` onto ``target`` (absent, empty, or a checked previous run)."""
    if not target.exists():
        os.replace(tmp, target)
        return
    if not any(target.iterdir()):
        target.rmdir()
        os.replace(tmp, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    old.rmdir()
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except OSError:
        os.replace(old, target)  # put the previous run back
        raise
    shutil.rmtree(old, ignore_errors=True)  # only the previous run's own files (checked)


def add_to_marker(folder: str | Path, *paths: str | Path) -> None:
    """Record files a later command wrote into a run folder (``--mode report`` adds report.pdf),
    so a ``--force`` replacement still knows them as the tool's own."""
    root = Path(folder)
    marker_path = root / RUN_MARKER
    try:
        marker = json.loads(marker_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # not a run folder of this tool: nothing to record
    names = {Path(p).resolve().relative_to(root.resolve()).as_posix() if Path(p).is_absolute() else Path(p).as_posix()
             for p in paths}
    marker["files"] = sorted(set(marker.get("files", [])) | names)
    marker_path.write_text(json.dumps(marker, indent=1), encoding="utf-8")


@contextmanager
def atomic_dir(target: str | Path, force: bool = False, option: str = "--out") -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success it becomes ``target`` (with the run
    marker), on any failure it is removed and ``target`` is left as it was.

    Refuses (``ConfigError``) whatever ``check_target`` refuses; file-system failures while
    writing (read-only place, disk full) become one-line ``ConfigError`` too.
    """
    absolute = check_target(target, force, option)
    try:
        absolute.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{absolute.name}.tmp-", dir=absolute.parent))
    except OSError as exc:
        raise ConfigError(f"{option} {target}: cannot create the folder ({exc.strerror or exc}); "
                          "choose a folder you can write to") from None
    try:
        yield tmp
        _write_marker(tmp)
        check_target(absolute, force, option)  # nothing appeared there meanwhile
        _replace(tmp, absolute)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ConfigError(f"{option} {target}: writing failed ({exc.strerror or exc}); nothing was written") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def fresh_default(path: str | Path) -> Path:
    """A default output folder (no ``--out`` given) that does not exist yet: ``path``, else
    ``path-2``, ``path-3``, ... — a rerun of the same command never needs ``--force``."""
    base = Path(path)
    if not base.exists():
        return base
    k = 2
    while Path(f"{base}-{k}").exists():
        k += 1
    return Path(f"{base}-{k}")
