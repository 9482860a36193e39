"""Starter configuration: every parameter with its default and allowed range.

    python config.template.py              # print a commented TOML config
    python config.template.py --write my.toml

The text is generated from the typed config (core/config.py), the single source of defaults,
so it can never drift from what the program validates.  Load it with ``--config my.toml``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from enum import Enum
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from core.config import AppConfig  # noqa: E402


def _bounds(info: Any) -> str:
    parts = []
    for meta in info.metadata:
        for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("pattern", "matches")):
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(f"{sym} {value}")
    annotation = str(info.annotation).replace("typing.", "")
    if "Literal" in annotation:
        parts.append("one of " + annotation[annotation.index("[") + 1:annotation.rindex("]")])
    elif isinstance(info.annotation, type) and issubclass(info.annotation, Enum):
        parts.append("one of " + ", ".join(repr(m.value) for m in info.annotation))
    return ", ".join(parts)


def _toml_value(value: Any) -> str:
    if isinstance(value, Enum):
        return _toml_value(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return '"' + str(value).replace('"', '\\"') + '"'


def template_text() -> str:
    """The commented TOML config with every default."""
    defaults = AppConfig()
    lines = ["# Quantor-MTFuzz configuration (command-line options override these values).", ""]
    for section, field in AppConfig.model_fields.items():
        model = field.annotation
        lines.append(f"[{section}]")
        for name, info in model.model_fields.items():  # type: ignore[union-attr]
            value = getattr(getattr(defaults, section), name)
            note = "; ".join(x for x in (info.description or "", _bounds(info)) if x)
            if value is None:
                lines.append(f"# {name} = (unset){'  # ' + note if note else ''}")
                continue
            lines.append(f"{name} = {_toml_value(value)}{'  # ' + note if note else ''}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", help="write the template to this file instead of printing it")
    ns = parser.parse_args(argv)
    text = template_text()
    if ns.write:
        Path(ns.write).write_text(text, encoding="utf-8")
        print(f"wrote {ns.write}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
