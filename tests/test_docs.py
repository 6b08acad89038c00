"""The documents hold together: every relative Markdown link in README.md and docs/*.md points
to a file that exists and, with a #fragment, to a heading of that file; every docs page is
linked from the README; the README stays short enough to read in minutes."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 300

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
_CODE_SPAN = re.compile(r"(`+).+?\1", re.S)
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)


def _prose(text: str) -> str:
    """The text without fenced code blocks and code spans (a link there is code, not a link)."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def anchors(text: str) -> set:
    """The fragments GitHub gives the headings of a Markdown text: lower case, punctuation
    other than '-' and '_' dropped, spaces turned into '-'; a repeated one gets -1, -2, ..."""
    seen: dict = {}
    out = set()
    for heading in _HEADING.findall(_FENCE.sub("", text)):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def broken_links(path: Path) -> list:
    """`(target, why)` for each relative link of the Markdown file `path` that leads nowhere."""
    text = path.read_text(encoding="utf-8")
    broken = []
    for target in _LINK.findall(_prose(text)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):       # http:, https:, mailto: ...
            continue
        file, _, fragment = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            broken.append((target, f"no file {dest}"))
        elif fragment and (dest.suffix != ".md" or fragment not in anchors(dest.read_text(encoding="utf-8"))):
            broken.append((target, f"no heading #{fragment} in {dest.name}"))
    return broken


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_somewhere(path):
    assert broken_links(path) == []


def test_the_link_check_finds_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## `f(x, *args)` in full\n\n## Twice\n\n## Twice\n")
    (tmp_path / "page.md").write_text(
        "# Page\n\n[good](other.md) [good](other.md#fx-args-in-full) [good](other.md#twice-1) [self](#page)\n"
        "[web](https://example.org/x) `[code](nowhere.md)`\n\n```\n[code](nowhere.md)\n```\n\n"
        "[gone](nowhere.md) [bad heading](other.md#absent) ![bad image](img/none.png)\n")
    assert [t for t, _ in broken_links(tmp_path / "page.md")] == ["nowhere.md", "other.md#absent", "img/none.png"]


def test_every_docs_page_is_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in _LINK.findall(_prose(readme))}
    assert [p.name for p in DOCUMENTS[1:] if p.resolve() not in linked] == []


def test_the_readme_reads_in_minutes():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/"
