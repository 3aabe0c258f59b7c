"""The guides hold: every file they or the code name exists, and nothing points outside.

A newcomer follows the paths in README, docs/ and the code's own comments; a path that
moved and was not updated sends them nowhere.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "instance/README.md"]
CODE = sorted((ROOT / "portal").rglob("*.py"))
TOP = "portal|tests|bench|docs|static|templates|instance"
PATH = re.compile(
    rf"(?<![\w/.-])((?:{TOP})/[\w./-]*\.(?:py|md|png|html|css|jsonl|json|mjs|js|txt|toml))\b"
)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def named_paths(path: Path) -> set[str]:
    """The repository's files a text names (instance/ holds runtime files, bar its README)."""
    found = set(PATH.findall(path.read_text(encoding="utf-8")))
    return {p for p in found if not p.startswith("instance/") or p == "instance/README.md"}


@pytest.mark.parametrize("path", GUIDES + CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_named_exists(path):
    missing = sorted(p for p in named_paths(path) if not (ROOT / p).exists())
    assert missing == []


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_of_a_guide_leads_somewhere(guide):
    links = [link for link in LINK.findall(guide.read_text()) if "://" not in link]
    missing = sorted(link for link in links if not (guide.parent / link).exists())
    assert missing == []


@pytest.mark.parametrize("path", GUIDES + CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_points_outside_the_repository(path):
    text = path.read_text(encoding="utf-8")
    assert "../shared" not in text and "SEARCH-PERF" not in text


def test_the_readme_stays_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_the_check_finds_the_paths_it_looks_for():
    """The control: the pattern sees paths in prose, code and links alike."""
    assert "portal/search/contract.py" in named_paths(ROOT / "docs/search.md")
    assert "security.md" in LINK.findall((ROOT / "README.md").read_text())[0] or any(
        "security.md" in link for link in LINK.findall((ROOT / "README.md").read_text())
    )
