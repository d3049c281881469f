"""The layers of docs/development.md, kept by import-linter: each contract can fail.

``lint-imports`` reads the contracts from ``pyproject.toml``. The tests run it on this
tree (every contract kept) and on copies with one forbidden import added (broken).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    if not LINT_IMPORTS.exists():
        pytest.skip(f"import-linter is not installed beside {sys.executable}")
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_tree_keeps_every_contract():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("spine/cobb.py", "import napari", "Only _napari imports napari"),
        ("data/masks.py", "import keras", "Only model imports Keras"),
        ("trimap.py", "from napari_spine_seg.model import files", "Arrows point down"),
        ("jobs/options.py", "from napari_spine_seg.cli import main", "Arrows point down"),
        # the one exception there was (the local job ran cli.main) is gone
        ("jobs/local.py", "from napari_spine_seg.cli import main", "Arrows point down"),
        ("jobs/run.py", "from napari_spine_seg.cli import train", "Arrows point down"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(tmp_path, module, line, contract):
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "src" / "napari_spine_seg" / module
    target.write_text(target.read_text() + f"\n\ndef _added():\n    {line}\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    broken = [row for row in result.stdout.splitlines() if "BROKEN" in row]
    assert any(contract in row for row in broken), result.stdout
