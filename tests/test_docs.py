"""The documentation builds (mkdocs --strict) and every page it lists and picture it shows exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_every_image_a_page_shows_exists():
    missing = []
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", page.read_text()):
            if not (page.parent / target).is_file():
                missing.append(f"{page.name}: {target}")
    assert not missing, missing


def test_mkdocs_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is in the [testing] extra")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for page in ("formats", "trimaps", "cli", "workflow", "cobb", "hpc", "performance"):
        assert (tmp_path / "site" / page / "index.html").is_file()
