"""The README and docs/: every relative link and anchor resolves, and the README stays short.

`make docs-check` (mkdocs build --strict) checks the links between pages of docs/ as the site
renders them; this checks them as a reader of the plain Markdown follows them, README.md
included (it is outside the site), with no tool but the files.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from pathlib import Path

import pytest

from tests.support.run import REPO

README_MAX_LINES = 150
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HTML = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def _prose(text: str) -> str:
    """The text without code blocks and inline code, where link syntax is not a link."""
    return _CODE.sub("", _FENCE.sub("", text))


def slug(heading: str) -> str:
    """A heading's anchor, as mkdocs' toc and the repository's web view both make it."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = text.replace("`", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(path: Path) -> set[str]:
    return {slug(h) for h in _HEADING.findall(_FENCE.sub("", path.read_text(encoding="utf-8")))}


def links(path: Path) -> list[str]:
    prose = _prose(path.read_text(encoding="utf-8"))
    return _LINK.findall(prose) + _HTML.findall(prose)


def _broken(page: Path, target: str, root: Path = REPO) -> str | None:
    if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...: not a file here
        return None
    file_part, _, anchor = target.partition("#")
    dest = (page.parent / file_part).resolve() if file_part else page
    if not dest.exists():
        return f"{target}: no such file"
    if root not in dest.parents and dest != root:
        return f"{target}: outside the repository"
    if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
        return f"{target}: no heading #{anchor} in {dest.relative_to(root)}"
    return None


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path):
    broken = [b for t in links(page) if (b := _broken(page, t))]
    assert not broken, f"{page.relative_to(REPO)}: {broken}"


def test_the_link_check_sees_links_and_finds_broken_ones(tmp_path):
    (tmp_path / "b.md").write_text("# The camera's field of view\n", encoding="utf-8")
    page = tmp_path / "a.md"
    page.write_text(
        '[ok](b.md#the-cameras-field-of-view) ![img](b.md) <img src="b.md">\n'
        "[bad anchor](b.md#nope) [missing](c.md)\n"
        "`[not a link](x.md)`\n```\n[nor this](y.md)\n```\n",
        encoding="utf-8",
    )
    found = links(page)
    assert found == ["b.md#the-cameras-field-of-view", "b.md", "b.md#nope", "c.md", "b.md"]
    assert [t for t in found if _broken(page, t, tmp_path)] == ["b.md#nope", "c.md"]


def test_the_readme_is_short_and_links_every_guide():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= README_MAX_LINES
    linked = {(REPO / t.partition("#")[0]).resolve() for t in links(REPO / "README.md")}
    guides = {p.resolve() for p in (REPO / "docs").glob("*.md")}
    guides |= {
        p.resolve()
        for d in ("technician", "reference", "dev")
        for p in (REPO / "docs" / d).glob("*.md")
    }
    assert not guides - linked, sorted(str(p.relative_to(REPO)) for p in guides - linked)


def test_the_formats_page_quotes_the_default_manifest_as_built():
    """Each ``toml`` excerpt of frames.toml on the formats page matches ``frames/frames.toml``.

    The top-level keys quoted are the file's; a ``[[frames]]`` table marked ``# frame N`` (or
    following one) is frame N's, key for key.
    """
    page = (REPO / "docs" / "reference" / "formats.md").read_text(encoding="utf-8")
    section = page[page.index("## frames.toml") : page.index("## frames.json")]
    blocks = re.findall(r"```toml\n(.*?)```", section, flags=re.S)
    manifest = tomllib.loads((REPO / "frames" / "frames.toml").read_text(encoding="utf-8"))
    assert len(blocks) >= 2
    quoted = 0
    for block in blocks:
        head, *tables = re.split(r"^\[\[frames\]\][^\n]*\n", block, flags=re.M)
        for key, value in tomllib.loads(head).items():
            assert manifest[key] == value, key
        numbers = [int(n) for n in re.findall(r"^\[\[frames\]\]\s*# frame (\d+)", block, re.M)]
        for i, table in enumerate(tables):
            index = numbers[0] + i
            assert tomllib.loads(table) == manifest["frames"][index], index
            quoted += 1
    assert quoted >= 4
