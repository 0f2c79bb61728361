"""The configuration reference, generated from ``Settings`` for the README.

``python -m studio9.config.reference README.md`` rewrites the table between the
markers; ``tests/unit/test_settings_reference.py`` fails when the README is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

import attrs

from studio9.config.settings import CONFIG_FILE_VAR, Settings, env_name

START = "<!-- settings-reference:start -->"
END = "<!-- settings-reference:end -->"


def markdown_table() -> str:
    """One row per setting: env var, default, meaning."""
    rows = ["| env var | default | meaning |", "|---|---|---|"]
    rows.append(
        f"| `{CONFIG_FILE_VAR}` | (none) | Optional TOML file with the settings below as lowercase keys"
        " (`port = 9000`); environment variables win over it. |"
    )
    for field in attrs.fields(Settings):
        shown = field.metadata.get("shown_default")
        default = shown if shown is not None else str(field.default)
        rows.append(f"| `{env_name(field.name)}` | `{default}` | {field.metadata['doc']} |")
    return "\n".join(rows)


def render_into(text: str) -> str:
    """``text`` with the block between the markers replaced by the current table."""
    head, found_start, rest = text.partition(START)
    _, found_end, tail = rest.partition(END)
    if not (found_start and found_end):
        raise ValueError(f"markers {START} … {END} not found")
    return f"{head}{START}\n{markdown_table()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else "README.md")
    path.write_text(render_into(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
