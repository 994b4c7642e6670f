"""The generated configuration reference: up to date, complete, and `config reference` itself."""

from __future__ import annotations

import re

import pytest

from appliance.cli import main
from appliance.configref import COMMAND, reference_markdown, section_rows
from tests.support.run import REPO

PAGE = REPO / "docs" / "reference" / "configuration.md"


def test_the_committed_reference_is_up_to_date():
    committed = PAGE.read_text(encoding="utf-8") if PAGE.is_file() else ""
    assert committed == reference_markdown(), (
        f"{PAGE.relative_to(REPO)} is stale: regenerate it with `{COMMAND}` and commit it"
    )


def _reference_keys() -> dict[str, set[str]]:
    """The keys of each section's table in the committed page."""
    keys: dict[str, set[str]] = {}
    section = ""
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        if m := re.fullmatch(r"## \[(\w+)\]", line):
            section = m[1]
            keys[section] = set()
        elif m := re.match(r"\| `(\w+)` \|", line):
            keys[section].add(m[1])
    return keys


def _shown_keys(text: str) -> set[tuple[str, str]]:
    """``(section, key)`` of every key `monalisa config show` prints, set or commented out."""
    shown, section = set(), ""
    for line in text.splitlines():
        if m := re.fullmatch(r"\[(\w+)\]", line):
            section = m[1]
        elif m := re.match(r"(?:# )?(\w+)(?: = | is unset)", line):
            shown.add((section, m[1]))
    return shown


@pytest.mark.parametrize(
    "toml",
    [
        "",  # the defaults: band_top/band_bottom set, the geometry keys shown as unused
        "[finder]\ncamera_height_m = 1.75\n[detector]\nscore_threshold = 0.7\n",
    ],
)
def test_every_key_config_show_prints_is_in_the_reference(tmp_path, capsys, toml):
    path = tmp_path / "config.toml"
    path.write_text(toml, encoding="utf-8")
    assert main(["config", "show", str(path)]) == 0
    shown = _shown_keys(capsys.readouterr().out)
    assert len(shown) > 80  # every section's keys were parsed, not a handful
    documented = _reference_keys()
    missing = sorted(f"[{s}] {k}" for s, k in shown if k not in documented.get(s, set()))
    assert not missing, f"keys `monalisa config show` prints but the reference lacks: {missing}"


def test_rows_give_type_default_range_and_description():
    finder = {row[0]: row for row in section_rows("finder")}
    assert finder["`camera_height_m`"][1:4] == ("float (may be left unset)", "unset", "> 0.2, ≤ 6")
    assert finder["`visitor_eyes_m`"][1:4] == (
        "[float, float]",
        "`[1.2, 1.95]`",
        "each ≥ 0.3, ≤ 2.5",
    )
    assert finder["`cadence`"][3] == '`"room"` \\| `"frame"`'
    display = {row[0]: row for row in section_rows("display")}
    assert display["`rotation`"][1:4] == ("int", "`0`", "`0` \\| `90` \\| `180` \\| `270`")
    schedule = {row[0]: row for row in section_rows("schedule")}
    assert schedule["`open`"][1:3] == ("list of string", "`[]`")
    for section in ("camera", "detector", "finder", "gaze", "display", "frames", "service"):
        for row in section_rows(section):
            assert len(row[4]) > 20, f"[{section}] {row[0]}: a description this thin says little"


def test_config_reference_prints_or_writes_the_page(tmp_path, capsys):
    assert main(["config", "reference"]) == 0
    assert capsys.readouterr().out == reference_markdown()
    out = tmp_path / "configuration.md"
    assert main(["config", "reference", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == reference_markdown()


def test_config_reference_names_a_file_it_cannot_write(tmp_path, capsys):
    (tmp_path / "file").write_text("", encoding="utf-8")
    target = tmp_path / "file" / "configuration.md"
    assert main(["config", "reference", "--out", str(target)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(target) in err[0] and "cannot write" in err[0], err


def test_the_role_defaults_point_to_keys_of_the_reference():
    """The Ansible role's config variables name, in their comments, keys the reference has."""
    defaults = (REPO / "ansible/roles/monalisa/defaults/main.yml").read_text(encoding="utf-8")
    config_part = defaults.split("# --- The configuration", 1)[1]
    named = re.findall(r"\[(\w+)\] (\w+)(?:,| and| \(|;|$)", config_part, re.M)
    assert len(named) >= 15, named
    documented = _reference_keys()
    assert not [f"[{s}] {k}" for s, k in named if k not in documented.get(s, set())]
