"""Repository-wide pytest rules.

In CI (``CI`` set to a true value) a skipped test is a failure: a test that needs a
missing part (a display, slurm, JAX) must not pass silently there. Outside CI a skip
stays a skip and ``-ra`` shows its reason.
"""

from __future__ import annotations

import os

import pytest


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if _in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every test must run: {reason}"


#: the variables as the session found them (a module fixture may set its own)
_ENV_AT_START = {name: os.environ.get(name) for name in ("SPINE_SEG_CACHE", "SPINE_SEG_JOBS_DIR")}


@pytest.fixture(scope="session")
def _user_folders(tmp_path_factory):
    return tmp_path_factory.mktemp("user-folders")


@pytest.fixture(autouse=True)
def _no_writes_to_home(_user_folders, monkeypatch):
    """Keep the array cache and the jobs index out of the home folder.

    Training (the GUI's too) caches fitted arrays in ``~/.cache`` and jobs are indexed in
    ``~/.local/share`` unless ``SPINE_SEG_CACHE`` and ``SPINE_SEG_JOBS_DIR`` say otherwise;
    both point into the session's temporary folder (shared by the session's tests, like a
    user's would be). A test that sets its own keeps its own. Child processes, local jobs
    and slurm jobs inherit them.
    """
    for name, sub in (("SPINE_SEG_CACHE", "cache"), ("SPINE_SEG_JOBS_DIR", "jobs")):
        if os.environ.get(name) == _ENV_AT_START[name]:  # not set by a wider fixture
            monkeypatch.setenv(name, str(_user_folders / sub))


#: fixtures that put a Qt/OpenGL window in the test process
_GUI_FIXTURES = {"make_napari_viewer", "make_napari_viewer_proxy", "qtbot", "qapp"}


def pytest_collection_modifyitems(config, items):
    """Mark every test that opens Qt or a napari viewer as ``gui``.

    TensorFlow and napari's OpenGL canvas (Mesa) crash a process that holds both, so
    tox runs the ``gui`` tests and the others in two pytest processes; the GUI code
    itself keeps Keras in child processes for the same reason.
    """
    for item in items:
        if _GUI_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.gui)
