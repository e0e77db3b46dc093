"""The README is a user's manual with one home per figure: short, with no dated or
machine-bound remarks, every figure a link to the table that measures it, and every link
in it and in docs/ pointing at a file and heading that exist."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT

README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "src/ferkit/weights/MODEL_CARD.md"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FIGURE = re.compile(r"\d+(?:\.\d+)?\s?(?:%|ms\b|faces/s|images/s|fps\b)")


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    heads = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


def test_the_readme_is_a_short_manual():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    assert not re.search(r"20\d\d-\d\d-\d\d", text), "a dated remark in the README"
    assert not re.search(r"EPYC|AVX|VNNI|this machine|\bsession", text), "a machine-bound remark"


def test_every_figure_in_the_readme_links_to_where_it_is_measured():
    for line in README.read_text(encoding="utf-8").splitlines():
        cells = line.split("|") if line.startswith("|") else [line]
        for cell in cells:
            if FIGURE.search(LINK.sub("", cell)):  # a figure outside any link
                raise AssertionError(f"a figure with no link to its table: {cell.strip()!r}")


def test_every_relative_link_resolves():
    broken = []
    for doc in DOCS:
        for target in LINK.findall(doc.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not checked offline
            file, _, anchor = target.partition("#")
            path = (doc.parent / file).resolve() if file else doc
            if not path.exists():
                broken.append(f"{doc.name}: {target} (no such file)")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                broken.append(f"{doc.name}: {target} (no such heading)")
    assert not broken, broken
