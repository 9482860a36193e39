"""Output folders that never cost the user a file: one rule for every mode that writes.

See ``data_factory.out_folder`` (the single implementation, also used by ``data export``):
absent or empty target -> written; a previous run of this tool (marker ``.quantor-run``) ->
replaced only with ``force`` (``--force``) and only when it holds nothing but that run's files;
anything else -> one-line ``ConfigError`` (exit 2) before anything is touched.  Outputs are
built in a hidden temporary folder beside the target and renamed into place: whole or nothing.

Call ``check_target(out, force)`` before a long run, so a refusal costs nothing, then write
inside ``with atomic_dir(out, force) as tmp:``.
"""

from __future__ import annotations

from data_factory.out_folder import (
    MARKER_FORMAT,
    RUN_MARKER,
    add_to_marker,
    atomic_dir,
    check_target,
    fresh_default,
    is_previous_run,
)

__all__ = ["MARKER_FORMAT", "RUN_MARKER", "add_to_marker", "atomic_dir", "check_target", "fresh_default",
           "is_previous_run"]
