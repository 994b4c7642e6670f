"""The fleet's inventory variables: the names the roles define, values by the config model.

Fast: the same functions ``deploy.yml``'s first task and the role's config task call, and
``deploy.yml`` and ``update-frames.yml`` stopping at that check (the role's ``check_vars.yml``)
before any task on a portrait no task could reach anyway (a few seconds each). The playbooks
refusing bad input over the chroot connection, nothing changed in a real root, are in
tests/test_ansible.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from appliance.config import EX_CONFIG, Config, ConfigError, dump_config, parse_config
from appliance.fleetvars import (
    CONFIG_VARIABLES,
    EXTRA_VARIABLE,
    UNDEFAULTED,
    check,
    known_variables,
    render,
)
from tests.support.run import REPO

ROLES = REPO / "ansible" / "roles"
KNOWN = known_variables(ROLES)
MODELS, FRAMES = "/opt/monalisa/models", "/opt/monalisa/frames"


def test_known_variables_are_every_roles_defaults() -> None:
    # One from each role, and nothing that is not a top-level key.
    assert {"monalisa_camera_width", "kiosk_reboot", "hardening_overlay_root"} <= KNOWN
    assert all(re.fullmatch(r"(monalisa|kiosk|hardening)_[a-z0-9_]+", n) for n in KNOWN), KNOWN
    assert set(UNDEFAULTED) <= KNOWN


def test_a_variable_a_role_adds_is_known_without_touching_the_check(tmp_path: Path) -> None:
    role = tmp_path / "kiosk" / "defaults"
    role.mkdir(parents=True)
    (role / "main.yml").write_text("---\n# A new one.\nkiosk_hdmi_mode: null\n  nested: 1\n")
    assert known_variables(tmp_path) == {"kiosk_hdmi_mode", *UNDEFAULTED}
    assert check({"p": {"kiosk_hdmi_mode": "x", "kiosk_hdmi_mod": "x"}}, {"kiosk_hdmi_mode"}) == [
        "p: kiosk_hdmi_mod: no role has this variable (did you mean kiosk_hdmi_mode?)"
    ]


def test_every_config_variable_is_documented_in_the_role_and_unset_there() -> None:
    """The role writes only what an inventory sets: its defaults set no config key."""
    defaults = (ROLES / "monalisa/defaults/main.yml").read_text(encoding="utf-8")
    for name in CONFIG_VARIABLES:
        assert re.search(rf"^{name}: null$", defaults, re.MULTILINE), name
    assert re.search(rf"^{EXTRA_VARIABLE}: \{{\}}$", defaults, re.MULTILINE)
    # Every (section, key) is a real config key, and no two variables set the same one.
    for section, key in CONFIG_VARIABLES.values():
        assert key in type(getattr(Config(), section)).model_fields, (section, key)
    assert len(set(CONFIG_VARIABLES.values())) == len(CONFIG_VARIABLES)


@pytest.mark.parametrize(
    ("variables", "line"),
    [
        (
            {"monalisa_camera_widht": 640},
            "portrait-2: monalisa_camera_widht: no role has this variable "
            "(did you mean monalisa_camera_width?)",
        ),
        (
            {"monalisa_camera_offset_y_mm": "12cm"},
            "portrait-2: monalisa_camera_offset_y_mm = '12cm': not a number",
        ),
        (
            {"monalisa_camera_fps": "fast"},
            "portrait-2: monalisa_camera_fps = 'fast': not a number",
        ),
        (
            {"monalisa_camera_fps": 500},
            "portrait-2: monalisa_camera_fps = 500: must be at most 120",
        ),
        (
            {"monalisa_display_rotation": "90°"},
            "portrait-2: monalisa_display_rotation = '90°': must be 0, 90, 180 or 270",
        ),
        (
            {"monalisa_display_fit": "stretch"},
            "portrait-2: monalisa_display_fit = 'stretch': must be 'fit' or 'fill'",
        ),
        (
            {"monalisa_schedule_open": ["Tue-Sun 10:00-18:00", "Mox 10:00-12:00"]},
            "portrait-2: monalisa_schedule_open[1] = 'Mox 10:00-12:00': unknown day 'Mox'",
        ),
        (
            {EXTRA_VARIABLE: {"camera": {"hfov_deg": 500}}},
            "portrait-2: monalisa_config_extra.camera.hfov_deg = 500: must be less than 180",
        ),
        (
            {EXTRA_VARIABLE: {"camera": {"zoom": 2}}},
            "portrait-2: monalisa_config_extra.camera.zoom = 2: unknown key",
        ),
        (
            {EXTRA_VARIABLE: ["health"]},
            "portrait-2: monalisa_config_extra = ['health']: should be settings by section",
        ),
        (
            {"monalisa_camera_tilt_deg": 90},
            "portrait-2: monalisa_camera_tilt_deg = 90: must be at most 80",
        ),
    ],
)
def test_one_line_names_host_variable_and_value_as_written(
    variables: dict[str, Any], line: str
) -> None:
    lines = check({"portrait-1": {"monalisa_camera_width": 640}, "portrait-2": variables}, KNOWN)
    assert len(lines) == 1, lines
    assert lines[0].startswith(line), lines[0]


def test_every_problem_of_every_host_is_listed() -> None:
    hosts: dict[str, dict[str, Any]] = {
        "a": {"monalisa_camera_widht": 640, "monalisa_camera_fps": 0},
        "b": {"hardening_ssh_pasword_authentication": True, "monalisa_finder_mode": "room"},
    }
    lines = check(hosts, KNOWN)
    assert [line.split(":")[0:2] for line in lines] == [
        ["a", " monalisa_camera_widht"],
        ["a", " monalisa_camera_fps = 0"],
        ["b", " hardening_ssh_pasword_authentication"],
        ["b", " monalisa_finder_mode = 'room'"],
    ]
    # Others than the roles' prefixes are not the check's (ansible_host, a gallery's own).
    assert check({"c": {"ansible_host": "x", "gallery_room": 3}}, KNOWN) == []


def test_nothing_set_renders_the_built_in_defaults() -> None:
    text = render("p", {}, MODELS, FRAMES)
    data = tomllib.loads(text)
    # Only where the role puts the models and the frames, nothing else.
    assert data == {"detector": {"model_dir": MODELS}, "frames": {"directory": FRAMES}}
    shown = dump_config(parse_config(data))
    expected = dump_config(Config(detector={"model_dir": MODELS}, frames={"directory": FRAMES}))
    assert shown == expected
    assert text.startswith("# monalisa configuration for p,")


def test_values_are_written_as_the_config_model_reads_them() -> None:
    variables = {
        "monalisa_camera_width": "640",  # -e monalisa_camera_width=640 is text
        "monalisa_camera_mirror": "true",
        "monalisa_camera_mount_height_m": 2.1,
        "monalisa_camera_tilt_deg": 6,
        "monalisa_schedule_screen": False,  # a bare off in YAML
        "monalisa_detector_model": "room-tuned.tflite",
        "monalisa_display_rotation": None,  # unset
        EXTRA_VARIABLE: {"health": {"temp_warning_c": 70}},
        "monalisa_home": "/ignored",  # not a config variable
    }
    data = tomllib.loads(render("p", variables, MODELS, FRAMES))
    assert data == {
        "camera": {"width": 640, "mirror": True},
        "detector": {"model": f"{MODELS}/room-tuned.tflite", "model_dir": MODELS},
        "finder": {"camera_height_m": 2.1, "camera_tilt_deg": 6.0},
        "frames": {"directory": FRAMES},
        "health": {"temp_warning_c": 70.0},
        "schedule": {"screen": "off"},
    }
    named = tomllib.loads(render("p", {"monalisa_detector_model": "short"}, MODELS, FRAMES))
    assert named["detector"]["model"] == "short"


def _module(*args: str, stdin: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance.fleetvars", *args],
        input=json.dumps(stdin),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_commands_the_playbooks_run() -> None:
    r = _module("check", "--roles", str(ROLES), stdin={"p": {"monalisa_camera_width": 640}})
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = _module("check", "--roles", str(ROLES), stdin={"p": {"monalisa_camera_widht": 640}})
    assert r.returncode == EX_CONFIG
    assert r.stderr.splitlines() == [
        "p: monalisa_camera_widht: no role has this variable (did you mean monalisa_camera_width?)"
    ]
    args = ("render", "--host", "p", "--models-dir", MODELS, "--frames-dir", FRAMES)
    r = _module(*args, stdin={"monalisa_camera_fps": 25})
    assert r.returncode == 0, r.stderr
    assert tomllib.loads(r.stdout)["camera"] == {"fps": 25.0}
    r = _module(*args, stdin={"monalisa_camera_fps": "fast"})
    assert r.returncode == EX_CONFIG and r.stdout == ""
    assert r.stderr.startswith("p: monalisa_camera_fps = 'fast': not a number")


def test_no_defaults_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape("no */defaults/main.yml")):
        known_variables(tmp_path)


# A portrait no task can reach (port 1 on this machine refuses): a task that ran on it after
# the check would show as unreachable=1 in the recap, and could change nothing here.
UNREACHABLE = "portrait-2 ansible_host=127.0.0.1 ansible_port=1 ansible_connection=ssh\n"
MISSPELT = (
    "monalisa_camera_widht: 640\n",
    "portrait-2: monalisa_camera_widht: no role has this variable "
    "(did you mean monalisa_camera_width?)",
)


def _play(tmp_path: Path, playbook: str, host_vars: str, *args: str) -> str:
    """Run ``playbook`` (from ``ansible/``) on :data:`UNREACHABLE`; its output, rc checked."""
    from tests.test_ansible import _run, _tool

    (tmp_path / "host_vars").mkdir(exist_ok=True)
    (tmp_path / "host_vars" / "portrait-2.yml").write_text(f"---\n{host_vars}", encoding="utf-8")
    (tmp_path / "inventory.ini").write_text(UNREACHABLE, encoding="utf-8")
    (tmp_path / "set").mkdir(exist_ok=True)  # no frames.toml: refused after the check
    cmd = [_tool("ansible-playbook"), "-i", str(tmp_path / "inventory.ini"), playbook]
    cmd += ["-e", f"frames={tmp_path / 'set'}"]
    cmd += ["-e", f"ansible_python_interpreter={sys.executable}"]
    r = _run([*cmd, *args], timeout=300)
    assert r.returncode != 0, r.stdout[-3000:]  # every run here is refused, one way or another
    recap = re.search(r"^portrait-2\s*:.*\bchanged=(\d+)\s+unreachable=(\d+)", r.stdout, re.M)
    assert recap and recap.groups() == ("0", "0"), r.stdout[-3000:] + r.stderr[-3000:]
    out: str = r.stdout
    return out


@pytest.mark.slow
@pytest.mark.parametrize("playbook", ["deploy.yml", "update-frames.yml"])
@pytest.mark.parametrize("mode", [(), ("--check",)], ids=["run", "check"])
def test_a_misspelt_variable_stops_each_playbook_before_any_host_task(
    tmp_path: Path, playbook: str, mode: tuple[str, ...]
) -> None:
    """Both playbooks run the role's check_vars.yml first: the one line, and no host task."""
    out = _play(tmp_path, playbook, MISSPELT[0], *mode)
    said = re.findall(r"^ +(portrait-2: .*)$", out, re.MULTILINE)
    assert said == [MISSPELT[1]], out[-3000:]
    tasks = re.findall(r"^TASK \[(.*?)\]", out, re.MULTILINE)
    assert tasks[-1].startswith("monalisa : Stop if any portrait's variables are wrong"), tasks


@pytest.mark.slow
def test_update_frames_goes_on_past_the_check_with_good_variables(tmp_path: Path) -> None:
    """The control: without the mistake, the check passes and the next refusal is reached."""
    out = _play(tmp_path, "update-frames.yml", "monalisa_camera_width: 640\n")
    assert "no frames.toml (build one with `monalisa frames build`)" in out, out[-3000:]
    assert not re.search(r"^ +portrait-2: ", out, re.MULTILINE), out[-3000:]
