"""Per-tenant themes: the theme registry, settings validation, CSS custom properties,
and a Jinja loader whose template names carry the theme (so the cache is keyed by theme).

A themed template is named `@<theme>/<path>`. The loader looks for `<path>` in the theme's
`templates/`, then in `base`'s. Inside a themed template, `{% extends "layout.html" %}` stays
in the same theme, and `"base:layout.html"` names `base`'s own file so that a theme can
extend the template it overrides.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask_babel import lazy_gettext as _l
from jinja2 import BaseLoader, TemplateNotFound
from jinja2.loaders import split_template_path

BASE_THEME = "base"
THEME_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
URL = re.compile(r"^(https://[^\s\"'<>()\\]+|/[^\s\"'<>()\\]*)$")

# Font stacks that need no download: the browser's own fonts.
FONT_STACKS = {
    "system": 'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif',
    "humanist": '"Seravek", "Gill Sans Nova", Ubuntu, Calibri, "DejaVu Sans", sans-serif',
    "geometric": 'Avenir, Montserrat, Corbel, "URW Gothic", sans-serif',
    "serif": 'Charter, "Bitstream Charter", "Sitka Text", Cambria, Georgia, serif',
    "mono": 'ui-monospace, "Cascadia Code", "Source Code Pro", Menlo, Consolas, monospace',
}


# Labels are English msgids, translated where they are shown.
FONT_LABELS = {
    "system": _l("System"),
    "humanist": _l("Humanist"),
    "geometric": _l("Geometric"),
    "serif": _l("Serif"),
    "mono": _l("Monospace"),
}


class ThemeSettingsError(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Setting:
    key: str
    type: str
    label: str
    default: Any
    css_var: str | None = None
    choices: tuple[str, ...] = ()
    choice_labels: tuple[str, ...] = ()
    max_length: int = 200

    @property
    def options(self) -> tuple[tuple[str, str], ...]:
        """(value, label) pairs for a choice or font setting."""
        return tuple(zip(self.choices, self.choice_labels, strict=True))


@dataclass(frozen=True)
class Theme:
    name: str
    title: str
    description: str
    path: Path
    settings: tuple[Setting, ...] = field(default_factory=tuple)

    def setting(self, key: str) -> Setting | None:
        return next((s for s in self.settings if s.key == key), None)

    def defaults(self) -> dict[str, Any]:
        return {s.key: s.default for s in self.settings}


def load_themes(themes_dir: str | Path) -> dict[str, Theme]:
    themes: dict[str, Theme] = {}
    for manifest in sorted(Path(themes_dir).glob("*/theme.json")):
        name = manifest.parent.name
        if not THEME_NAME.match(name):
            continue
        data = json.loads(manifest.read_text(encoding="utf-8"))
        settings = tuple(
            Setting(
                key=key,
                type=spec["type"],
                label=spec.get("label", key),
                default=spec.get("default", ""),
                css_var=spec.get("css_var"),
                choices=tuple(choices),
                choice_labels=tuple(choices.values()),
                max_length=spec.get("max_length", 200),
            )
            for key, spec in data.get("settings", {}).items()
            for choices in [_choices(spec)]
        )
        themes[name] = Theme(
            name, data["name"], data.get("description", ""), manifest.parent, settings
        )
    if BASE_THEME not in themes:
        raise RuntimeError(f"no '{BASE_THEME}' theme in {themes_dir}")
    return themes


def _choices(spec: dict) -> dict[str, str]:
    """A setting's choices as value → label (`choices` may be a list of values)."""
    if spec["type"] == "font":
        return {key: str(label) for key, label in FONT_LABELS.items()}
    choices = spec.get("choices", {})
    return dict(choices) if isinstance(choices, dict) else {c: c for c in choices}


def validate_settings(theme: Theme, submitted: dict[str, Any]) -> dict[str, Any]:
    """Return clean settings for `theme`, or raise ThemeSettingsError naming each bad field."""
    clean: dict[str, Any] = {}
    errors: dict[str, str] = {}
    unknown = set(submitted) - {s.key for s in theme.settings}
    for key in sorted(unknown):
        errors[key] = _l("This is not a setting of this theme.")
    for setting in theme.settings:
        value = _text(submitted.get(setting.key, setting.default))
        problem = _problem(setting, value)
        if problem is not None:
            errors[setting.key] = problem
        clean[setting.key] = value
    if errors:
        raise ThemeSettingsError(errors)
    return clean


def effective_settings(theme: Theme, saved: dict[str, Any]) -> dict[str, Any]:
    """Saved settings over the theme's defaults; a saved value the theme no longer accepts
    falls back to the default rather than reaching the page."""
    settings = theme.defaults()
    for setting in theme.settings:
        if setting.key in saved:
            value = _text(saved[setting.key])
            if _problem(setting, value) is None:
                settings[setting.key] = value
    return settings


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _problem(setting: Setting, value: str):
    """What is wrong with `value` for `setting` (a message), or None."""
    if setting.type == "color":
        return None if COLOR.match(value) else _l("Enter a colour like #1a2b3c.")
    if setting.type in ("choice", "font"):
        if value in setting.choices:
            return None
        return _l("Choose one of: %(choices)s.", choices=", ".join(setting.choices))
    if setting.type == "url":
        if not value or URL.match(value):
            return None
        return _l("Enter an https:// address or a path starting with /.")
    if setting.type == "text":
        if len(value) <= setting.max_length:
            return None
        return _l("Use at most %(n)s characters.", n=setting.max_length)
    return _l("This setting has an unknown type.")


def css_custom_properties(theme: Theme, settings: dict[str, Any]) -> str:
    """`--name: value;` lines for the settings that declare a CSS variable. Values are
    validated (colours, font keys), so nothing a tenant types reaches the stylesheet raw."""
    lines = []
    for setting in theme.settings:
        if not setting.css_var:
            continue
        value = settings.get(setting.key, setting.default)
        if setting.type == "color" and COLOR.match(str(value)):
            lines.append(f"{setting.css_var}: {value};")
        elif setting.type == "font" and value in FONT_STACKS:
            lines.append(f"{setting.css_var}: {FONT_STACKS[value]};")
        elif setting.type == "choice" and value in setting.choices:
            lines.append(f"{setting.css_var}: {value};")
    return "\n".join(lines)


def themed_name(theme: str, template: str) -> str:
    return f"@{theme}/{template}"


class ThemeLoader(BaseLoader):
    """Loads `@<theme>/<path>` from the theme, falling back to `base`."""

    def __init__(self, themes: dict[str, Theme]):
        self.themes = themes

    def get_source(self, environment, template: str):
        if not template.startswith("@") or "/" not in template:
            raise TemplateNotFound(template)
        theme_name, _, path = template[1:].partition("/")
        if theme_name not in self.themes:
            raise TemplateNotFound(template)
        pieces = split_template_path(path)  # refuses "..": no escape from the theme
        search = [theme_name] if theme_name == BASE_THEME else [theme_name, BASE_THEME]
        for name in search:
            file = self.themes[name].path.joinpath("templates", *pieces)
            if file.is_file():
                source = file.read_text(encoding="utf-8")
                mtime = file.stat().st_mtime
                return source, str(file), lambda f=file, m=mtime: f.stat().st_mtime == m
        raise TemplateNotFound(template)


def join_themed_path(template: str, parent: str) -> str:
    """Keep `extends`/`include` inside the parent's theme; `base:x` names base's own `x`."""
    if template.startswith("@"):
        return template
    if template.startswith("base:"):
        return themed_name(BASE_THEME, template[len("base:") :])
    if parent.startswith("@"):
        return themed_name(parent[1:].partition("/")[0], template)
    return template


def theme_static_file(themes: dict[str, Theme], theme: str, filename: str) -> Path | None:
    """The file a theme serves for `filename`, falling back to base; None if neither has it."""
    if theme not in themes:
        return None
    try:
        pieces = split_template_path(filename)
    except TemplateNotFound:
        return None
    for name in dict.fromkeys([theme, BASE_THEME]):
        file = themes[name].path.joinpath("static", *pieces)
        if file.is_file():
            return file
    return None
