"""The package as users get it: a wheel that napari finds, and imports that stay light.

The wheel test builds the wheel offline (``build --no-isolation``: no package index is
asked), installs it with ``pip --no-deps --no-index`` into a fresh venv
and asks npe2 there, in an isolated interpreter (``python -I``, another working folder),
to discover the plugin: so the manifest must be inside the installed package, not
reached through the editable install of the source tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(args, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


#: no package index during the tests: the wheel is built and installed from what is here
OFFLINE = {**os.environ, "PIP_NO_INDEX": "1"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built offline with the build backend of this environment (``hatchling``,
    in the ``testing`` extra) instead of one downloaded into an isolated build env."""
    out = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-m", "build", "--wheel", "--no-isolation"]
    _run([*build, "--outdir", os.fspath(out), os.fspath(REPO)], env=OFFLINE)
    (whl,) = out.glob("napari_spine_seg-*.whl")
    return whl


def test_wheel_in_a_fresh_venv_is_discovered_by_npe2(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", os.fspath(venv)])
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", os.fspath(python)]
    _run([*pip, "install", "--no-deps", "--no-index", "--quiet", os.fspath(wheel)], env=OFFLINE)
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run([os.fspath(python), "-I", "-c", where]).stdout.strip())
    # --system-site-packages reaches the base interpreter; when the tests run in a venv
    # (tox, /work/venv) napari lives in that venv, so add its folder as a plain path
    # (a path line in a .pth does not run the .pth files there, e.g. the editable
    # install's, so the source tree stays out of sys.path).
    here = sysconfig.get_paths()["purelib"]
    (site / "zz_test_deps.pth").write_text(here + "\n")

    probe = textwrap.dedent(
        """
        import json, sys, tempfile, pathlib
        import numpy as np
        from PIL import Image
        import npe2, napari_spine_seg
        pm = npe2.PluginManager.instance()
        pm.discover()
        mf = pm.get_manifest("napari-spine-seg")
        img = pathlib.Path(tempfile.mkdtemp()) / "x.png"
        Image.fromarray(np.arange(64 * 32, dtype=np.uint16).reshape(64, 32)).save(img)
        layers = npe2.read([str(img)], stack=False, plugin_name="napari-spine-seg")
        print(json.dumps({
            "package": napari_spine_seg.__file__,
            "manifest": str(mf._source_file),
            "readers": [r.command for r in mf.contributions.readers],
            "writers": [w.command for w in mf.contributions.writers],
            "samples": [s.key for s in mf.contributions.sample_data],
            "read": [(list(d.shape), t) for d, _, t in layers],
            "sys_path": sys.path,
        }))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    found = json.loads(_run([os.fspath(python), "-I", "-c", probe], cwd=tmp_path, env=env).stdout)

    installed = site / "napari_spine_seg"
    assert Path(found["package"]).resolve().parent == installed.resolve()
    assert Path(found["manifest"]) == (installed / "napari.yaml").resolve()
    assert (installed / "napari.yaml").is_file() and not (installed / "napari.yaml").is_symlink()
    assert not any(Path(p).resolve() == (REPO / "src").resolve() for p in found["sys_path"] if p)
    assert "napari-spine-seg.get_aasce_reader" in found["readers"]
    assert found["readers"][-1] == "napari-spine-seg.get_xray_reader"
    assert found["writers"] == ["napari-spine-seg.write_trimap", "napari-spine-seg.write_landmarks"]
    assert found["samples"] == ["phantom"]
    assert found["read"] == [[[64, 32], "image"]]


def _heavy_modules_after(code: str, cwd) -> tuple[str, list[str]]:
    """Run `code` in a fresh interpreter; return its output and the heavy modules it imported."""
    probe = (
        code
        + "\nimport sys\nprint('HEAVY', *sorted(m for m in sys.modules"
        + " if m.split('.')[0] in ('tensorflow', 'keras')))\n"
    )
    proc = _run([sys.executable, "-c", probe], cwd=cwd)
    (heavy,) = [line for line in proc.stdout.splitlines() if line.startswith("HEAVY")]
    return proc.stdout, heavy.split()[1:]


def test_package_and_napari_modules_do_not_import_tensorflow_or_keras(tmp_path):
    code = "\n".join(
        f"import napari_spine_seg{m}"
        for m in ("", "._napari._reader", "._napari._writer", "._napari._sample_data")
    )
    _, heavy = _heavy_modules_after(code, tmp_path)
    assert heavy == []


def test_cobb_help_does_not_import_tensorflow_or_keras(tmp_path):
    code = textwrap.dedent(
        """
        from napari_spine_seg.cli import main
        try:
            main(["cobb", "--help"])
        except SystemExit as exc:
            print("STATUS", exc.code)
        """
    )
    out, heavy = _heavy_modules_after(code, tmp_path)
    assert "STATUS 0" in out and "usage: spine-seg cobb" in out, out
    assert heavy == []
