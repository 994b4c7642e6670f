"""A gallery's Ansible inventory variables: checked before a deploy, turned into the config.

Runs on the control machine (the playbooks call ``python -m appliance.fleetvars``), never on a
portrait. Two jobs, sharing one table (:data:`CONFIG_VARIABLES`, variable -> config key):

* ``check`` (``deploy.yml``'s first task, before anything changes on any host): every
  ``monalisa_*``, ``kiosk_*`` and ``hardening_*`` variable a host has must be one the roles
  define in ``roles/*/defaults/main.yml`` (or :data:`UNDEFAULTED`), and every configuration
  variable's value must pass the appliance's own config model (:mod:`appliance.config`), as
  written: ``12cm`` in a number field is an error, never 0.
* ``render`` (the monalisa role): the host's ``/etc/monalisa/config.toml``, holding only the
  settings its inventory sets (plus where the role puts the models and the frames), written
  with ``tomli-w``; the appliance's built-in defaults apply to the rest.

Problems are reported one line each, ``HOST: VARIABLE = VALUE: what is expected``; the
commands then exit :data:`~appliance.config.EX_CONFIG` (78).
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError

from appliance.config import (
    Config,
    ConfigError,
    KeyName,
    format_validation_error,
    key_path,
)
from appliance.detector import MODEL_FILES

PREFIXES = ("monalisa_", "kiosk_", "hardening_")
"""The roles' variable prefixes: a host variable with one of them must be a known one."""

CONFIG_VARIABLES: dict[str, tuple[str, str]] = {
    "monalisa_camera_source": ("camera", "source"),
    "monalisa_camera_width": ("camera", "width"),
    "monalisa_camera_height": ("camera", "height"),
    "monalisa_camera_fps": ("camera", "fps"),
    "monalisa_camera_hfov_deg": ("camera", "hfov_deg"),
    "monalisa_camera_mirror": ("camera", "mirror"),
    "monalisa_camera_offset_x_mm": ("camera", "offset_x_mm"),
    "monalisa_camera_offset_y_mm": ("camera", "offset_y_mm"),
    "monalisa_detector_model": ("detector", "model"),
    "monalisa_detector_threads": ("detector", "num_threads"),
    "monalisa_finder_mode": ("finder", "mode"),
    "monalisa_camera_mount_height_m": ("finder", "camera_height_m"),
    "monalisa_camera_tilt_deg": ("finder", "camera_tilt_deg"),
    "monalisa_display_rotation": ("display", "rotation"),
    "monalisa_display_fit": ("display", "fit"),
    "monalisa_log_level": ("service", "log_level"),
    "monalisa_schedule_open": ("schedule", "open"),
    "monalisa_schedule_closed": ("schedule", "closed"),
    "monalisa_schedule_timezone": ("schedule", "timezone"),
    "monalisa_schedule_screen": ("schedule", "screen"),
}
"""Each inventory variable that sets one config key: ``(section, key)``. The one table."""

EXTRA_VARIABLE = "monalisa_config_extra"
"""Any other config keys, by section, merged over the variables above."""

UNDEFAULTED: tuple[str, ...] = ()
"""Documented role variables that have no entry in a ``defaults/main.yml`` (none today: every
variable is listed there, the unset ones as ``null``)."""

DEFAULTS_GLOB = "*/defaults/main.yml"
"""Where, under the roles folder, each role lists its variables."""

_TOP_LEVEL_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:", re.MULTILINE)


def known_variables(roles_dir: Path) -> set[str]:
    """The variables the roles define.

    The top-level keys of each role's ``defaults/main.yml`` (YAML keys at column 0; the
    files are plain mappings), and :data:`UNDEFAULTED`.

    Raises:
        ConfigError: No ``defaults/main.yml`` under ``roles_dir``.
    """
    files = sorted(roles_dir.glob(DEFAULTS_GLOB))
    if not files:
        raise ConfigError([f"{roles_dir}: no {DEFAULTS_GLOB} (not the playbooks' roles folder)"])
    names = set(UNDEFAULTED)
    for path in files:
        names.update(_TOP_LEVEL_KEY.findall(path.read_text(encoding="utf-8")))
    return names


def _written(section: str, key: str, value: Any) -> Any:
    """A variable's value as the config takes it: YAML reads a bare ``off`` as false."""
    if (section, key) == ("schedule", "screen") and value is False:
        return "off"
    return value


def config_data(
    variables: Mapping[str, Any], models_dir: str | None = None, frames_dir: str | None = None
) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], str]]:
    """The config sections a host's variables set, and which variable set each key.

    Args:
        variables: The host's variables (others than :data:`CONFIG_VARIABLES` and
            :data:`EXTRA_VARIABLE` are ignored; ``None`` = unset).
        models_dir: Where the role installs the models: written as ``[detector] model_dir``,
            and a model that is not a named one ('full', 'short') is a file in it. None: left
            out (the check does not need the host's layout).
        frames_dir: The live frame set's path on the host (``[frames] directory``); None:
            left out.

    Returns:
        ``(data, origin)``: the sections as written (not converted), and for each
        ``(section, key)`` the variable it came from (``monalisa_config_extra.SECTION.KEY``
        for the extra settings).

    Raises:
        ValueError: ``monalisa_config_extra`` is not a mapping.
    """
    data: dict[str, dict[str, Any]] = {}
    origin: dict[tuple[str, str], str] = {}
    for name, (section, key) in CONFIG_VARIABLES.items():
        value = variables.get(name)
        if value is None:
            continue
        named = isinstance(value, str) and value in MODEL_FILES
        if (section, key) == ("detector", "model") and models_dir and not named:
            value = f"{models_dir}/{value}"
        data.setdefault(section, {})[key] = _written(section, key, value)
        origin[section, key] = name
    if models_dir:
        data.setdefault("detector", {})["model_dir"] = models_dir
    if frames_dir:
        data.setdefault("frames", {})["directory"] = frames_dir
    for section, values in _extra(variables).items():
        if not isinstance(values, Mapping):
            data[section] = values
            origin[section, ""] = f"{EXTRA_VARIABLE}.{key_path((section,))}"
            continue
        for key, value in values.items():
            data.setdefault(section, {})[key] = value
            origin[section, key] = f"{EXTRA_VARIABLE}.{key_path((section, key))}"
    return data, origin


def _extra(variables: Mapping[str, Any]) -> Mapping[str, Any]:
    """The extra settings, by section ({} unset); raises ValueError if not a mapping."""
    extra = variables.get(EXTRA_VARIABLE) or {}
    if not isinstance(extra, Mapping):
        raise ValueError(
            f"{EXTRA_VARIABLE} = {extra!r}: should be settings by section, e.g. "
            "{health: {temp_warning_c: 70}}"
        )
    return extra


def _namer(origin: Mapping[tuple[str, str], str]) -> KeyName:
    """Names a key of the config data by the variable that set it."""

    def name(loc: tuple[int | str, ...]) -> str:
        if not loc:
            return "(config)"
        section = str(loc[0])
        if len(loc) == 1:
            if (section, "") in origin:
                return origin[section, ""]
            given = sorted(v for (s, _), v in origin.items() if s == section)
            return f"[{section}] ({', '.join(given) or EXTRA_VARIABLE})"
        var = origin.get((section, str(loc[1])))
        if var is None:
            return f"{EXTRA_VARIABLE}.{key_path(loc)}"
        return var + "".join(f"[{i}]" if isinstance(i, int) else f".{i}" for i in loc[2:])

    return name


def validate(
    host: str,
    variables: Mapping[str, Any],
    models_dir: str | None = None,
    frames_dir: str | None = None,
) -> Config:
    """Check a host's configuration variables with the appliance's config model.

    Args:
        host: The inventory name, to begin each error line with.
        variables: The host's variables (see :func:`config_data`).
        models_dir: See :func:`config_data`.
        frames_dir: See :func:`config_data`.

    Returns:
        The validated configuration; ``model_dump(exclude_unset=True)`` is what was set.

    Raises:
        ConfigError: One line per problem: ``HOST: VARIABLE = VALUE: what is expected``.
    """
    try:
        data, origin = config_data(variables, models_dir, frames_dir)
    except ValueError as err:
        raise ConfigError([f"{host}: {err}"]) from None
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(
            format_validation_error(host, data, err, key_name=_namer(origin))
        ) from None


def unknown_lines(host: str, variables: Sequence[str], known: set[str]) -> list[str]:
    """One line per role-prefixed variable of ``host`` no role defines, with the nearest name."""
    lines = []
    for name in sorted(variables):
        if not name.startswith(PREFIXES) or name in known:
            continue
        near = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        hint = f" (did you mean {near[0]}?)" if near else " (see roles/*/defaults/main.yml)"
        lines.append(f"{host}: {name}: no role has this variable{hint}")
    return lines


def check(hosts: Mapping[str, Mapping[str, Any]], known: set[str]) -> list[str]:
    """Every problem of every host's variables, one line each (empty: all good)."""
    lines: list[str] = []
    for host, variables in hosts.items():
        lines += unknown_lines(host, list(variables), known)
        try:
            validate(host, variables)
        except ConfigError as err:
            lines += err.lines
    return lines


def render(host: str, variables: Mapping[str, Any], models_dir: str, frames_dir: str) -> str:
    """The host's config file: the keys its variables set, as the config model read them.

    Raises:
        ConfigError: As :func:`validate`.
    """
    config = validate(host, variables, models_dir, frames_dir)
    header = (
        f"# monalisa configuration for {host}, written by Ansible from its inventory variables\n"
        f"# (host_vars/{host}.yml, group_vars/). Edit those, not this file. Settings not here\n"
        "# are the appliance's built-in defaults: `monalisa config show` prints every one.\n\n"
    )
    return header + tomli_w.dumps(config.model_dump(mode="json", exclude_unset=True))


def _read_stdin_json() -> Any:
    try:
        return json.load(sys.stdin)
    except json.JSONDecodeError as err:
        raise ConfigError([f"(stdin): not JSON: {err}"]) from None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m appliance.fleetvars check|render``; the variables come as JSON on stdin.

    ``check --roles DIR``: stdin ``{HOST: {VARIABLE: VALUE}}``; prints nothing when all is
    well. ``render --host H --models-dir D --frames-dir D``: stdin ``{VARIABLE: VALUE}``; prints
    the TOML. Problems go to stderr, one line each, and the exit status is 78.
    """
    parser = argparse.ArgumentParser(prog="python -m appliance.fleetvars", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="check every host's variables (JSON on stdin)")
    c.add_argument("--roles", type=Path, required=True, help="the playbooks' roles folder")
    r = sub.add_parser("render", help="print one host's config.toml (its variables on stdin)")
    r.add_argument("--host", required=True)
    r.add_argument("--models-dir", required=True)
    r.add_argument("--frames-dir", required=True)
    args = parser.parse_args(argv)
    try:
        data = _read_stdin_json()
        if args.command == "check":
            lines = check(data, known_variables(args.roles))
            if lines:
                raise ConfigError(lines)
        else:
            sys.stdout.write(render(args.host, data, args.models_dir, args.frames_dir))
    except ConfigError as err:
        return err.report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
