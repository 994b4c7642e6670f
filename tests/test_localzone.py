"""Finding the time zone: a named one, or the system's from TZ, /etc/localtime, /etc/timezone."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from appliance.localzone import ZoneError, named_zone, resolve_zone, system_zone

ZONEINFO = Path("/usr/share/zoneinfo")
needs_tzdata = pytest.mark.skipif(
    not (ZONEINFO / "Europe" / "Paris").is_file(), reason="needs the system's tzdata files"
)


def offset_in_july(zone: ZoneInfo) -> float:
    return datetime(2026, 7, 1, 12, tzinfo=UTC).astimezone(zone).utcoffset().total_seconds()  # type: ignore[union-attr]


def test_named_zone_and_its_error():
    assert named_zone("Europe/Paris").key == "Europe/Paris"
    with pytest.raises(ZoneError) as info:
        named_zone("Europe/Pariss")
    assert str(info.value) == (
        "unknown time zone 'Europe/Pariss' (an IANA name such as 'Europe/Paris'; "
        "empty = the system's)"
    )
    for bad in ("../etc/passwd", "/etc/localtime", ""):
        with pytest.raises(ZoneError):
            named_zone(bad)


def test_resolve_prefers_the_given_name(tmp_path):
    zone, name = resolve_zone("America/New_York", env={"TZ": "Europe/Paris"})
    assert (zone.key, name) == ("America/New_York", "America/New_York")
    zone, name = resolve_zone("", env={"TZ": "Asia/Tokyo"})
    assert name == "Asia/Tokyo"


@pytest.mark.parametrize("tz", ["Europe/Paris", ":Europe/Paris"])
def test_tz_environment_name(tmp_path, tz):
    zone, name = system_zone({"TZ": tz}, etc=tmp_path)
    assert (zone.key, name) == ("Europe/Paris", "Europe/Paris")


@needs_tzdata
def test_tz_environment_path(tmp_path):
    zone, name = system_zone({"TZ": str(ZONEINFO / "Asia" / "Tokyo")}, etc=tmp_path)
    assert name == str(ZONEINFO / "Asia" / "Tokyo")
    assert offset_in_july(zone) == 9 * 3600


@needs_tzdata
def test_localtime_link_gives_the_name(tmp_path):
    (tmp_path / "localtime").symlink_to(ZONEINFO / "America" / "New_York")
    (tmp_path / "timezone").write_text("Europe/Paris\n")  # the link wins, as for libc
    zone, name = system_zone({}, etc=tmp_path)
    assert (zone.key, name) == ("America/New_York", "America/New_York")


@needs_tzdata
def test_bad_tz_falls_through_to_the_files(tmp_path):
    (tmp_path / "localtime").symlink_to(ZONEINFO / "Europe" / "Paris")
    assert system_zone({"TZ": "Nowhere/Special"}, etc=tmp_path)[1] == "Europe/Paris"


@needs_tzdata
def test_copied_localtime_named_by_etc_timezone(tmp_path):
    shutil.copy(ZONEINFO / "Europe" / "Paris", tmp_path / "localtime")
    (tmp_path / "timezone").write_text("Europe/Paris\n")
    zone, name = system_zone({}, etc=tmp_path)
    assert (zone.key, name) == ("Europe/Paris", "Europe/Paris")


@needs_tzdata
def test_copied_localtime_without_a_name_is_read_as_is(tmp_path):
    shutil.copy(ZONEINFO / "Asia" / "Tokyo", tmp_path / "localtime")
    zone, name = system_zone({}, etc=tmp_path)
    assert name == str(tmp_path / "localtime")
    assert offset_in_july(zone) == 9 * 3600


def test_nothing_readable_is_utc(tmp_path):
    (tmp_path / "localtime").write_bytes(b"not a TZif file")
    zone, name = system_zone({}, etc=tmp_path)
    assert (zone.key, name) == ("UTC", "UTC")
    zone, name = system_zone({}, etc=tmp_path / "missing")
    assert name == "UTC"


def test_this_machines_zone_is_found():
    zone, name = system_zone()
    assert name
    assert datetime(2026, 1, 1, tzinfo=zone).utcoffset() is not None
