"""A Babel extractor for `themes/<name>/theme.json`.

A theme's setting labels are shown to resellers through `_(setting.label)` on the branding
page, and its description next to them, so they belong in the catalogue like any `_()`
string. pybabel has no JSON extractor, and a string added by hand to the `.po` would be
marked obsolete by the next `pybabel update`. Theme names are brand names and stay as they
are.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from typing import IO, Any


def extract_theme_json(
    fileobj: IO[bytes],
    keywords: Collection[str],
    comment_tags: Collection[str],
    options: dict[str, Any],
) -> Iterator[tuple[int, str | None, str, list[str]]]:
    """Yield `(lineno, funcname, message, comments)` for the theme's description, every
    setting label (the setting's key when it has none, as `load_themes` shows it) and every
    choice label."""
    source = fileobj.read().decode(options.get("encoding", "utf-8"))
    manifest = json.loads(source)
    strings = [manifest.get("description", "")]
    for key, spec in manifest.get("settings", {}).items():
        strings.append(spec.get("label", key))
        if isinstance(spec.get("choices"), dict):
            strings += list(spec["choices"].values())
    lines = source.splitlines()
    for text in strings:
        if isinstance(text, str) and text.strip():
            yield _line_of(lines, text), None, text, []


def _line_of(lines: list[str], text: str) -> int:
    """The first line holding `text` as a JSON string (1 if it is written escaped)."""
    quoted = json.dumps(text, ensure_ascii=False)
    return next((number for number, line in enumerate(lines, 1) if quoted in line), 1)
