from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from appliance.cli import main
from appliance.config import (
    EX_CONFIG,
    Config,
    ConfigError,
    dump_config,
    load_config,
    parse_config,
)


def test_empty_file_gives_working_defaults(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("")
    cfg = load_config(p)
    assert cfg == Config()
    assert cfg.camera.hfov_deg == 66.0 and cfg.detector.model == "full"


def test_errors_name_file_key_and_value(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[camera]\nfps = -3\nsurprise = 1\n[display]\nrotation = 45\n[nope]\n")
    with pytest.raises(ConfigError) as info:
        load_config(p)
    lines = info.value.lines
    assert f"{p}: camera.fps = -3: must be greater than 0" in lines
    assert f"{p}: camera.surprise = 1: unknown key" in lines
    assert any(line.startswith(f"{p}: display.rotation = 45:") for line in lines)
    assert any(line.startswith(f"{p}: nope = {{}}: unknown key") for line in lines)
    assert len(lines) == 4


def test_a_key_toml_must_quote_is_named_quoted_on_one_line(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[camera]\n"\\n" = 0\n"a b" = 1\n"x\\u2028y" = 2\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(p)
    lines = info.value.lines
    assert f'{p}: camera."\\n" = 0: unknown key' in lines
    assert f'{p}: camera."a b" = 1: unknown key' in lines
    assert f'{p}: camera."x\\u2028y" = 2: unknown key' in lines
    assert all("\n" not in line and "\u2028" not in line for line in lines)


def test_missing_unreadable_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[camera\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(binary)


def test_dump_round_trips():
    cfg = parse_config({"camera": {"mirror": True, "source": 'replay:/a "b"'}})
    text = dump_config(cfg)
    again = parse_config(tomllib.loads(text))
    assert again == cfg
    # Keys that other settings make unused are written as comments that say why.
    assert "# visitor_eyes_m = [" in text and "\nband_top = 0.3\n" in text
    assert "\ncamera_tilt_deg = 0.0\n" in text  # the gaze's rows use it without the band's height
    placed = parse_config({"finder": {"camera_height_m": 2.2, "camera_tilt_deg": 8.0}})
    text = dump_config(placed)
    assert "\ncamera_height_m = 2.2\n" in text and "# band_top = 0.3 is not used: " in text
    assert parse_config(tomllib.loads(text)) == placed


def test_cli_check_and_show(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text("[camera]\nmirror = true\n")
    assert main(["config", "check", str(good)]) == 0
    assert main(["config", "show", str(good)]) == 0
    out = capsys.readouterr().out
    assert "mirror = true" in out
    bad = tmp_path / "bad.toml"
    bad.write_text("[camera]\nmirror = 3\n")
    assert main(["config", "check", str(bad)]) == EX_CONFIG
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"{bad}: camera.mirror = 3: not true or false"]


def test_cli_check_names_each_model_it_cannot_find(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    p = tmp_path / "c.toml"
    p.write_text(f'[detector]\nmodel = "{empty}/blazeface.tflite"\nmodel_dir = "{empty}"\n')
    assert main(["config", "check", str(p)]) == EX_CONFIG
    # The full-range path is missing; the short-range follow model still comes from models/.
    assert capsys.readouterr().err.strip().splitlines() == [
        f"{p}: detector.model: {empty}/blazeface.tflite: model file not found"
    ]
    # A short-range detector, and whole mode with one missing model: the one line it needs.
    p.write_text('[detector]\nmodel = "short"\n')
    assert main(["config", "check", str(p)]) == 0
    p.write_text(f'[detector]\nmodel = "{empty}/x.tflite"\n[finder]\nmode = "whole"\n')
    assert main(["config", "check", str(p)]) == EX_CONFIG
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_console_script_exit_status(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("x = [")
    res = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "config", "check", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 78
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


# -- fuzzing: any TOML document gives a Config or one line per problem, never a traceback ---
SECTIONS = list(Config.model_fields)
KEYS = sorted({k for s in SECTIONS for k in Config.model_fields[s].annotation.model_fields})  # type: ignore[union-attr]
scalars = st.one_of(
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=6)
tables = st.dictionaries(
    st.sampled_from([*SECTIONS, "bogus"]),
    st.dictionaries(st.sampled_from([*KEYS, "zz"]), values, max_size=5),
    max_size=5,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables)
def test_fuzz_parsed_documents(data):
    try:
        cfg = parse_config(data, "fuzz.toml")
    except ConfigError as err:
        assert err.lines
        for line in err.lines:
            assert line.startswith("fuzz.toml: ") and "\n" not in line
    else:
        assert isinstance(cfg, Config)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_raw_text(tmp_path_factory, text):
    p: Path = tmp_path_factory.mktemp("fz") / "c.toml"
    p.write_text(text, encoding="utf-8")
    try:
        load_config(p)
    except ConfigError as err:
        assert all(line.startswith(str(p)) for line in err.lines)


# -- cross-checks with the modules that use the values -------------------------------------
@pytest.mark.parametrize("value", [0, 0.0, 1, 1.0, -0.1, 1.5])
def test_score_threshold_must_be_strictly_between_0_and_1(tmp_path, capsys, value):
    p = tmp_path / "c.toml"
    p.write_text(f"[detector]\nscore_threshold = {value}\n")
    assert main(["config", "check", str(p)]) == EX_CONFIG
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{p}: detector.score_threshold = {value}:")
    assert parse_config({"detector": {"score_threshold": 0.01}}).detector.score_threshold == 0.01


GOOD_SOURCES = ["picamera2", "webcam", "webcam:", "webcam:0", "webcam:12", "replay:x", "replay:a b"]
BAD_SOURCES = ["bogus", "", "replay:", "webcam:x", "webcam:-1", "webcam:1.5", "Picam", "webcam:²"]


@pytest.mark.parametrize("spec", GOOD_SOURCES + BAD_SOURCES)
def test_camera_source_grammar_matches_parse_source(spec):
    from appliance.camera import parse_source

    try:
        parse_source(spec)
    except ValueError:
        camera_ok = False
    else:
        camera_ok = True
    assert camera_ok is (spec in GOOD_SOURCES)
    try:
        parse_config({"camera": {"source": spec}}, "c.toml")
    except ConfigError as err:
        assert not camera_ok
        assert len(err.lines) == 1 and err.lines[0].startswith(f"c.toml: camera.source = {spec!r}:")
    else:
        assert camera_ok


def test_bad_camera_source_fails_config_check(tmp_path, capsys):
    p = tmp_path / "c.toml"
    p.write_text('[camera]\nsource = "bogus"\n')
    assert main(["config", "check", str(p)]) == EX_CONFIG
    assert capsys.readouterr().err.strip().splitlines() == [
        f"{p}: camera.source = 'bogus': expected 'picamera2', 'webcam', 'webcam:N' or 'replay:DIR'"
    ]
    # The replay folder is checked when the camera opens, not by the config.
    p.write_text(f'[camera]\nsource = "replay:{tmp_path / "absent"}"\n')
    assert main(["config", "check", str(p)]) == 0


def test_config_does_not_import_the_camera_module():
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, appliance.config as c; c.parse_config({'camera': {'source': 'webcam'}}); "
            "c.parse_config({'finder': {'camera_height_m': 1.75}}); "
            "print(sorted(m for m in sys.modules if m in ('appliance.camera', 'picamera2', "
            "'cv2', 'pygame')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert res.stdout.strip() == "[]"


@pytest.mark.parametrize(("stale", "interval"), [(1.0, 1.0), (0.5, 1.0), (5.0, 10.0)])
def test_stale_after_must_exceed_status_interval(tmp_path, capsys, stale, interval):
    p = tmp_path / "c.toml"
    p.write_text(f"[health]\nstale_after_s = {stale}\n[service]\nstatus_interval_s = {interval}\n")
    assert main(["config", "check", str(p)]) == EX_CONFIG
    assert capsys.readouterr().err.strip().splitlines() == [
        f"{p}: health.stale_after_s = {stale} must be greater than service.status_interval_s "
        f"= {interval}: every status would count as stale"
    ]
    ok = parse_config({"health": {"stale_after_s": 2.5}, "service": {"status_interval_s": 2.0}})
    assert ok.health.stale_after_s == 2.5


# --- [schedule] ------------------------------------------------------------------------------


def test_schedule_defaults_to_always_open():
    cfg = Config()
    assert (cfg.schedule.open, cfg.schedule.closed, cfg.schedule.timezone) == ([], [], "")
    assert cfg.schedule.screen == "off"
    assert cfg.schedule.to_schedule().always_open


def test_schedule_section_builds_its_schedule(tmp_path):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    p = tmp_path / "c.toml"
    p.write_text(
        '[schedule]\nopen = ["Tue-Sun 10:00-18:00", "Thu 18:00-21:00"]\n'
        'closed = ["2026-12-25", "2026-12-31..2027-01-01"]\ntimezone = "Europe/Paris"\n'
        'screen = "rest"\n'
    )
    cfg = load_config(p)
    schedule = cfg.schedule.to_schedule()
    paris = ZoneInfo("Europe/Paris")
    assert schedule.zone == paris
    assert schedule.is_open(datetime(2026, 12, 10, 20, 30, tzinfo=paris))
    assert not schedule.is_open(datetime(2026, 12, 31, 12, tzinfo=paris))
    assert cfg.schedule.screen == "rest"
    assert load_config(_round_trip(tmp_path, cfg)) == cfg


def _round_trip(tmp_path: Path, cfg: Config) -> Path:
    q = tmp_path / "shown.toml"
    q.write_text(dump_config(cfg))
    return q


def test_schedule_errors_name_the_entry_and_the_bad_part(tmp_path, capsys):
    p = tmp_path / "c.toml"
    p.write_text(
        '[schedule]\nopen = ["Tue-Sun 10:00-18:00", "Thu 18:00-21:0x", "Sunday 10:00-12:00"]\n'
        'closed = ["2026-12-25", "2026-02-30"]\ntimezone = "Europe/Pariss"\nscreen = "dark"\n'
        "surprise = 1\n"
    )
    assert main(["config", "check", str(p)]) == EX_CONFIG
    assert capsys.readouterr().err.strip().splitlines() == [
        f"{p}: schedule.open[1] = 'Thu 18:00-21:0x': bad time '21:0x' (HH:MM, 00:00 to 24:00)",
        f"{p}: schedule.open[2] = 'Sunday 10:00-12:00': unknown day 'Sunday' (days: Mon Tue "
        "Wed Thu Fri Sat Sun, ranges like Tue-Sun, lists like Mon,Wed, or daily)",
        f"{p}: schedule.closed[1] = '2026-02-30': bad date '2026-02-30' (YYYY-MM-DD, a day "
        "that exists)",
        f"{p}: schedule.timezone = 'Europe/Pariss': unknown time zone (an IANA name such as "
        "'Europe/Paris'; empty = the system's)",
        f"{p}: schedule.screen = 'dark': must be 'off', 'black' or 'rest'",
        f"{p}: schedule.surprise = 1: unknown key",
    ]


def test_schedule_open_must_be_a_list_of_strings(tmp_path):
    with pytest.raises(ConfigError) as info:
        parse_config({"schedule": {"open": "Tue-Sun 10:00-18:00"}}, "c.toml")
    assert info.value.lines == ["c.toml: schedule.open = 'Tue-Sun 10:00-18:00': not a list"]


def _field_values(section: str, key: str) -> st.SearchStrategy[Any]:
    """Values of the key's own type (valid or not: the test keeps what the config accepts)."""
    field = type(getattr(Config(), section)).model_fields[key]
    default = field.default
    literals = [a for a in get_args(field.annotation) if get_origin(a) is Literal]
    if get_origin(field.annotation) is Literal:
        literals = [field.annotation]
    if literals:
        return st.sampled_from(get_args(literals[0]))
    any_text = st.text(st.characters(codec="utf-8"), max_size=12)
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.integers(-2, 5000)
    if isinstance(default, tuple):
        return st.lists(st.floats(0, 100), min_size=2, max_size=2).map(sorted)
    if isinstance(default, list):
        return st.lists(any_text, max_size=2)
    if isinstance(default, str) and default.startswith(("picamera2", "replay")):
        return st.builds(lambda t: f"replay:{t}", any_text)
    if isinstance(default, str) or (default is None and "str" in str(field.annotation)):
        return any_text
    return st.floats(-1, 1000, allow_nan=False) | st.floats(0, 1)


SETTABLE = [(name, key) for name, section in Config() for key in type(section).model_fields]


@st.composite
def valid_configs(draw: st.DrawFn) -> Config:
    """A valid config with up to 12 keys set, each kept only if the config still accepts it."""
    data: dict[str, dict[str, Any]] = {}
    for section, key in draw(st.lists(st.sampled_from(SETTABLE), max_size=12, unique=True)):
        value = draw(_field_values(section, key))
        trial = {**data, section: {**data.get(section, {}), key: value}}
        try:
            parse_config(trial)
        except ConfigError:
            continue
        data = trial
    return parse_config(data)


@settings(max_examples=150, deadline=None, database=None)
@given(config=valid_configs())
@example(config=parse_config({"camera": {"source": "replay:/tmp/a\u0001b"}}))
def test_config_show_reads_back_equal_for_any_valid_config(config: Config) -> None:
    text = dump_config(config)
    assert parse_config(tomllib.loads(text)) == config
