"""The configuration reference page, generated from the pydantic models in ``config.py``.

``monalisa config reference`` writes ``docs/reference/configuration.md`` with this module: one
table per section (key, type, default, range or choices, description), read from the models'
JSON schema, so the models' ``description`` texts are the one place a setting is explained.
``tests/test_configref.py`` fails when the committed page differs from what this produces.
"""

from __future__ import annotations

import json
import re
from typing import Any

from appliance.config import Config

COMMAND = "monalisa config reference --out docs/reference/configuration.md"
"""The command that regenerates the committed page (quoted in the page and by the test)."""

_ROLE = re.compile(r":\w+:`~?([^`]+)`|``([^`]+)``")
"""A Sphinx role or literal in a docstring (``:class:`CameraConfig```, ````open````)."""

GUIDES = {
    "camera": ("Where the camera is", "../technician/camera.md#where-the-camera-is"),
    "finder": ("The head band", "../technician/camera.md#the-head-band"),
    "gaze": ("Tuning the gaze", "../technician/gaze.md"),
    "display": ("The screen", "../technician/camera.md#the-screen"),
    "frames": ("Building frames for your portrait", "../artist.md"),
    "service": ("What the unit does", "../technician/install.md#what-the-unit-does"),
    "health": ("Health and the failure table", "../technician/health.md"),
    "schedule": ("Opening hours", "../technician/hours.md"),
}
"""The guide that explains each section: its title and link (relative to the page)."""

_TYPES = {"integer": "int", "number": "float", "boolean": "bool", "string": "string"}


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return dict(defs[ref.rsplit("/", 1)[-1]])
    return schema


def _alternatives(prop: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """The non-null alternatives of a property's schema, and whether it may be unset (null)."""
    options = prop.get("anyOf")
    if not isinstance(options, list):
        return [prop], False
    kept = [o for o in options if o.get("type") != "null"]
    return kept, len(kept) < len(options)


def _type_name(schema: dict[str, Any]) -> str:
    if "enum" in schema or "const" in schema:
        values = schema.get("enum", [schema.get("const")])
        return _TYPES.get(schema.get("type", ""), "string" if isinstance(values[0], str) else "int")
    kind = schema.get("type", "")
    if kind == "array":
        items = schema.get("prefixItems")
        if isinstance(items, list):
            return "[" + ", ".join(_type_name(i) for i in items) + "]"
        return "list of " + _type_name(schema.get("items", {}))
    return _TYPES.get(kind, kind or "any")


def _bounds(schema: dict[str, Any]) -> str:
    parts = []
    for key, sign in (
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
    ):
        if key in schema:
            parts.append(f"{sign} {_number(schema[key])}")
    return ", ".join(parts)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _range(schema: dict[str, Any]) -> str:
    """Choices (``a`` | ``b``) or bounds (``≥ 0, ≤ 1``), also those of a pair's items."""
    values = schema.get("enum") or ([schema["const"]] if "const" in schema else None)
    if values:
        return " | ".join(f"`{json.dumps(v)}`" for v in values)
    items = schema.get("prefixItems")
    if isinstance(items, list):
        inner = {_range(i) for i in items} - {""}
        return f"each {inner.pop()}" if len(inner) == 1 else "; ".join(sorted(inner))
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        inner_range = _range(schema["items"])
        return f"each {inner_range}" if inner_range else ""
    return _bounds(schema)


def _default(prop: dict[str, Any]) -> str:
    if "default" not in prop:
        return "—"
    value = prop["default"]
    if value is None:
        return "unset"
    # JSON spells these defaults (strings, numbers, booleans, lists) as TOML does.
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def _cell(text: str) -> str:
    """Text fit for one Markdown table cell: one line, ``|`` escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _intro(docstring: str | None) -> str:
    """A section model's docstring as a Markdown paragraph (its roles shown as code)."""
    text = _ROLE.sub(lambda m: f"`{m[1] or m[2]}`", docstring or "").strip()
    return "\n\n".join(" ".join(p.split()) for p in text.split("\n\n") if p.strip())


def section_rows(section: str) -> list[tuple[str, str, str, str, str]]:
    """The reference rows of one config section.

    Args:
        section: A top-level key of the configuration, e.g. ``"camera"``.

    Returns:
        One ``(key, type, default, range or choices, description)`` tuple per key, in the
        model's order, as Markdown cell text.
    """
    schema = Config.model_json_schema()
    defs = schema.get("$defs", {})
    model = _resolve(schema["properties"][section], defs)
    rows = []
    for key, prop in model.get("properties", {}).items():
        options, optional = _alternatives(prop)
        kind = " or ".join(_type_name(_resolve(o, defs)) for o in options)
        limits = "; ".join(r for r in (_range(_resolve(o, defs)) for o in options) if r)
        if optional:
            kind += " (may be left unset)"
        rows.append(
            (
                f"`{key}`",
                _cell(kind),
                _cell(_default(prop)),
                _cell(limits or "—"),
                _cell(prop.get("description", "")),
            )
        )
    return rows


def reference_markdown() -> str:
    """The whole configuration reference page, as Markdown (ends with a newline)."""
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated from appliance/config.py: do not edit. Regenerate with",
        f"     {COMMAND} -->",
        "",
        "The appliance reads one TOML file: `/etc/monalisa/config.toml` under systemd, or the",
        "file given with `--config`. Every key is optional and an empty file means the defaults",
        "below. Unknown keys and values outside the ranges are errors: "
        "`monalisa config check FILE`",
        "prints one line per problem, naming the file, the key and the value, and exits 78.",
        "`monalisa config show [FILE]` prints the effective value of every key.",
        "",
        "This page is generated from the settings' definitions in `appliance/config.py`"
        f" (`{COMMAND}`);",
        "a test fails when it is out of date.",
        "",
    ]
    for section, field in Config.model_fields.items():
        annotation = field.annotation
        out += [f"## [{section}]", ""]
        intro = _intro(getattr(annotation, "__doc__", None))
        if intro:
            out += [intro, ""]
        if section in GUIDES:
            title, link = GUIDES[section]
            out += [f"Guide: [{title}]({link}).", ""]
        out += [
            "| key | type | default | range or choices | description |",
            "|---|---|---|---|---|",
        ]
        out += ["| " + " | ".join(row) + " |" for row in section_rows(section)]
        out.append("")
    return "\n".join(out)
