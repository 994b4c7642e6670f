"""The time zone to read opening hours in: a named IANA zone, or the system's.

The system's zone is found as the C library finds it, with its name when it has one:

1. ``TZ`` in the environment, when set and not empty: an IANA name (``Europe/Paris``,
   a leading ``:`` allowed) or an absolute path to a TZif file;
2. ``/etc/localtime``: a symbolic link into a ``zoneinfo`` folder gives the name
   (``/usr/share/zoneinfo/Europe/Paris`` -> ``Europe/Paris``); a plain copy is read as is;
3. ``/etc/timezone`` (Debian's name file), for a copy whose name is wanted;
4. UTC, if none of these can be read (a minimal container).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ZONE_HINT = "an IANA name such as 'Europe/Paris'; empty = the system's"
"""What a time zone setting should look like, for error messages."""


class ZoneError(ValueError):
    """A time zone name that names no zone (one line, with the name)."""


def named_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``, e.g. ``Europe/Paris`` or ``UTC``.

    Raises:
        ZoneError: ``name`` is not a zone in the system's (or the tzdata package's) database.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ZoneError(f"unknown time zone {name!r} ({ZONE_HINT})") from None


def _name_from_link(path: Path) -> str | None:
    try:
        target = path.resolve(strict=True)
    except OSError:
        return None
    parts = target.parts
    if "zoneinfo" not in parts:
        return None
    return "/".join(parts[len(parts) - parts[::-1].index("zoneinfo") :]) or None


def _from_file(path: Path) -> ZoneInfo | None:
    try:
        with path.open("rb") as f:
            return ZoneInfo.from_file(f, key=str(path))
    except (OSError, ValueError):
        return None


def system_zone(
    env: Mapping[str, str] | None = None, etc: Path = Path("/etc")
) -> tuple[ZoneInfo, str]:
    """The system's time zone and a name for it (see the module's docstring for the order).

    Args:
        env: The environment to read ``TZ`` from; None = ``os.environ``.
        etc: The folder holding ``localtime`` and ``timezone`` (tests give another).

    Returns:
        The zone, and its IANA name or, for an unnamed file, the file's path.
    """
    tz = (os.environ if env is None else env).get("TZ", "").removeprefix(":")
    if tz.startswith("/"):
        zone = _from_file(Path(tz))
        if zone is not None:
            return zone, tz
    elif tz:
        try:
            return named_zone(tz), tz
        except ZoneError:
            pass
    localtime = etc / "localtime"
    for name in (_name_from_link(localtime), _read_name(etc / "timezone")):
        if name:
            try:
                return named_zone(name), name
            except ZoneError:
                continue
    zone = _from_file(localtime)
    if zone is not None:
        return zone, str(localtime)
    return ZoneInfo("UTC"), "UTC"


def _read_name(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def resolve_zone(name: str, env: Mapping[str, str] | None = None) -> tuple[ZoneInfo, str]:
    """``name``'s zone, or the system's when ``name`` is empty; with the name to show.

    Raises:
        ZoneError: A non-empty ``name`` that names no zone.
    """
    if name:
        return named_zone(name), name
    return system_zone(env)
