"""A user's files are never written to: outputs over inputs or into a data set are refused.

Every case runs the real command line on real files and checksums the whole input tree
before and after (:func:`_files.tree_checksums`): a refused command leaves every byte
and every permission bit as it was, and writes no new file among the inputs.
Also here: output-name collisions, the umask, fsync, a full disk (a file-size limit),
and a batch that fails half-way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from _files import (
    synthetic_landmarks,
    synthetic_xray,
    tree_checksums,
    truncate_file,
    write_aasce_layout,
    write_jpeg,
    write_pets_layout,
    write_png,
)
from napari_spine_seg.cli import main
from napari_spine_seg.data.masks import read_trimap_png
from napari_spine_seg.errors import SpineSegError

SIZE = (120, 48)


def one_line_error(capsys, command: str) -> str:
    """The single stderr line of a refused command (and nothing on stdout)."""
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith(f"spine-seg {command}: error: "), err
    assert "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture(autouse=True)
def _no_progress_bars(monkeypatch):
    """tqdm's bars (shown after 1 s, so only on a loaded machine) are not the error line."""
    monkeypatch.setenv("TQDM_DISABLE", "1")  # also reaches the subprocesses


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """An untrained tiny model: these tests need the plumbing, not a good prediction."""
    from napari_spine_seg.model.builders import build_model
    from napari_spine_seg.model.files import ModelInfo, save_model

    path = tmp_path_factory.mktemp("model") / "m.keras"
    keras_model = build_model("unet", (64, 32, 1), depth=2, filters=4)
    info = ModelInfo(preset="unet", options={"depth": 2, "filters": 4}, input_size=(64, 32))
    return save_model(keras_model, path, info)


@pytest.fixture
def world(tmp_path):
    """An AASCE data set, a folder of PNG X-rays, and a folder of trimaps drawn from the set."""
    root = write_aasce_layout(tmp_path / "set", n_train=2, n_test=2, size=SIZE)
    xrays = tmp_path / "xrays"
    for i in range(3):
        lm = synthetic_landmarks(*SIZE, 0.05 * i)
        write_png(xrays / f"x{i}.png", synthetic_xray(lm, SIZE, seed=i))
    assert main(["trimaps", str(root), "--out", str(tmp_path / "trimaps"), "--jobs", "1"]) == 0
    return {
        "root": root,
        "test": root / "data" / "test",
        "xrays": xrays,
        "trimaps": tmp_path / "trimaps" / "test",
        "tmp": tmp_path,
    }


def _first(folder: Path, pattern: str = "*") -> Path:
    return sorted(folder.glob(pattern))[0]


# command, argv builder (paths -> argv), the output path the error must name
REFUSED = {
    "predict --out the input folder of PNG X-rays": (
        "predict",
        lambda w, m: ["predict", m, str(w["xrays"]), "--out", str(w["xrays"])],
        lambda w: w["xrays"],
    ),
    "predict --out DIR/data/test of a data set": (
        "predict",
        lambda w, m: ["predict", m, str(w["xrays"]), "--out", str(w["test"])],
        lambda w: w["test"],
    ),
    "predict --out the split folder read": (
        "predict",
        lambda w, m: ["predict", m, str(w["test"]), "--out", str(w["test"])],
        lambda w: w["test"],
    ),
    "predict --out labels/test of the data set read": (
        "predict",
        lambda w, m: ["predict", m, str(w["root"]), "--out", str(w["root"] / "labels" / "test")],
        lambda w: w["root"] / "labels" / "test",
    ),
    "predict --out a new folder inside the input folder": (
        "predict",
        lambda w, m: ["predict", m, str(w["xrays"]), "--out", str(w["xrays"] / "pred")],
        lambda w: w["xrays"] / "pred",
    ),
    "predict --out the folder of an input file": (
        "predict",
        lambda w, m: ["predict", m, str(w["xrays"] / "x0.png"), "--out", str(w["xrays"])],
        lambda w: w["xrays"],
    ),
    "predict --out the split folder spelt with ..": (
        "predict",
        lambda w, m: ["predict", m, str(w["xrays"]), "--out", str(w["test"]) + "/../test"],
        lambda w: str(w["test"]) + "/../test",
    ),
    "cobb --csv the data set's angles.csv": (
        "cobb",
        lambda w, m: ["cobb", str(w["root"]), "--csv", str(w["root"] / "labels/test/angles.csv")],
        lambda w: w["root"] / "labels/test/angles.csv",
    ),
    "cobb --csv an X-ray of the data set": (
        "cobb",
        lambda w, m: ["cobb", str(w["root"]), "--csv", str(_first(w["test"]))],
        lambda w: _first(w["test"]),
    ),
    "cobb --csv an X-ray elsewhere": (
        "cobb",
        lambda w, m: ["cobb", str(w["root"]), "--csv", str(w["xrays"] / "x1.png")],
        lambda w: w["xrays"] / "x1.png",
    ),
    "cobb --csv a trimap of the folder measured": (
        "cobb",
        lambda w, m: ["cobb", str(w["trimaps"]), "--csv", str(_first(w["trimaps"]))],
        lambda w: _first(w["trimaps"]),
    ),
    "evaluate --json labels/test/landmarks.csv": (
        "evaluate",
        lambda w, m: [
            "evaluate",
            str(w["trimaps"]),
            str(w["test"]),
            "--json",
            str(w["root"] / "labels/test/landmarks.csv"),
        ],
        lambda w: w["root"] / "labels/test/landmarks.csv",
    ),
    "evaluate --json into the predictions' folder": (
        "evaluate",
        lambda w, m: [
            "evaluate",
            str(w["trimaps"]),
            str(w["test"]),
            "--json",
            str(w["trimaps"] / "scores.json"),
        ],
        lambda w: w["trimaps"] / "scores.json",
    ),
    "gaps --json a trimap PNG": (
        "gaps",
        lambda w, m: ["gaps", str(w["trimaps"]), "--json", str(_first(w["trimaps"]))],
        lambda w: _first(w["trimaps"]),
    ),
    "trimaps --out data/test of the data set": (
        "trimaps",
        lambda w, m: ["trimaps", str(w["root"]), "--out", str(w["test"])],
        lambda w: w["test"],
    ),
    "trimaps --out a folder inside the split read": (
        "trimaps",
        lambda w, m: ["trimaps", str(w["test"]), "--out", str(w["test"] / "t")],
        lambda w: w["test"] / "t",
    ),
    "synth into data/ of a data set": (
        "synth",
        lambda w, m: ["synth", str(w["root"] / "data" / "more"), "--train", "1", "--test", "0"],
        lambda w: w["root"] / "data" / "more",
    ),
    "train --out into labels/ of the data set": (
        "train",
        lambda w, m: ["train", str(w["root"]), "--out", str(w["root"] / "labels" / "m.keras")],
        lambda w: w["root"] / "labels" / "m.keras",
    ),
    "train --out over an X-ray": (
        "train",
        lambda w, m: ["train", str(w["root"]), "--out", str(_first(w["test"]))],
        lambda w: _first(w["test"]),
    ),
    "demo --out into data/ of a data set": (
        "demo",
        lambda w, m: ["demo", "--quick", "--out", str(w["test"] / "demo")],
        lambda w: w["test"] / "demo",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_an_output_over_an_input_or_into_a_data_set_is_refused(case, world, model_path, capsys):
    command, argv, named = REFUSED[case]
    before = tree_checksums(world["tmp"])
    assert main(argv(world, str(model_path))) == 2
    err = one_line_error(capsys, command)
    assert f"error: {named(world)}:" in err
    assert tree_checksums(world["tmp"]) == before  # not a byte changed, not a file added


def test_a_symbolic_link_to_an_input_folder_is_the_input_folder(world, model_path, capsys):
    link = world["tmp"] / "link"
    link.symlink_to(world["xrays"], target_is_directory=True)
    before = tree_checksums(world["xrays"])
    assert main(["predict", str(model_path), str(world["xrays"]), "--out", str(link)]) == 2
    assert "the input folder" in one_line_error(capsys, "predict")
    assert main(["cobb", str(link), "--csv", str(world["root"] / "labels" / "a.csv")]) == 2
    assert "data set's own folder" in one_line_error(capsys, "cobb")
    assert tree_checksums(world["xrays"]) == before


def test_refusals_come_before_tensorflow_is_imported(world, tmp_path):
    """In a fresh process: the refusal is the only output, and TensorFlow never loaded."""
    script = textwrap.dedent(
        """
        import sys
        from napari_spine_seg.cli import main
        status = main(sys.argv[1:])
        print("tensorflow" in sys.modules, "keras" in sys.modules)
        sys.exit(status)
        """
    )
    for argv in (
        ["predict", str(tmp_path / "m.keras"), str(world["xrays"]), "--out", str(world["xrays"])],
        ["train", str(world["root"]), "--out", str(world["test"] / "m.keras")],
    ):
        before = tree_checksums(world["tmp"])
        run = subprocess.run(
            [sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 2, run.stderr
        assert run.stdout.strip() == "False False"
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr
        assert tree_checksums(world["tmp"]) == before


def test_the_core_writers_refuse_too(world, model_path):
    """Widgets call the core, not the CLI: the same guarantee holds there."""
    from napari_spine_seg.data.trimaps import write_trimaps
    from napari_spine_seg.evaluate import evaluate, write_report_json
    from napari_spine_seg.model.predict import predict_files

    before = tree_checksums(world["tmp"])
    with pytest.raises(SpineSegError, match="is the input folder"):
        predict_files(model_path, [world["xrays"]], world["xrays"])
    with pytest.raises(SpineSegError, match="is the folder of the input"):
        predict_files(model_path, [world["xrays"] / "x0.png"], world["xrays"])
    with pytest.raises(SpineSegError, match="data set's own folder"):
        predict_files(model_path, [world["xrays"]], world["root"] / "labels" / "p")
    report = evaluate(world["trimaps"], world["test"])
    with pytest.raises(SpineSegError, match="landmarks.csv: exists and is not a .json file"):
        write_report_json(report, world["root"] / "labels" / "test" / "landmarks.csv")
    with pytest.raises(SpineSegError, match="is inside the input folder"):
        write_report_json(report, world["trimaps"] / "r.json")
    with pytest.raises(SpineSegError, match="is inside the input folder"):
        write_report_json(report, world["root"] / "r.json")  # the data set's root
    with pytest.raises(SpineSegError, match="data set's own folder"):
        write_trimaps(world["root"], world["root"] / "data" / "training", jobs=1)
    assert tree_checksums(world["tmp"]) == before


# --------------------------------------------------------------------------- collisions


@pytest.mark.parametrize(
    "names", [("x.jpg", "x.png"), ("Spine.jpg", "spine.jpg"), ("a.tif", "A.PNG")]
)
def test_two_images_with_one_trimap_name_are_refused_before_writing(
    names, tmp_path, model_path, capsys
):
    folder = tmp_path / "in"
    for i, name in enumerate(names):
        pixels = synthetic_xray(synthetic_landmarks(*SIZE, 0.05 * i), SIZE, seed=i)
        if name.lower().endswith(".jpg"):
            write_jpeg(folder / name, pixels)
        elif name.lower().endswith(".png"):
            write_png(folder / name, pixels)
        else:
            from _files import write_tiff

            write_tiff(folder / name, pixels)
    before = tree_checksums(folder)
    out = tmp_path / "out"
    assert main(["predict", str(model_path), str(folder), "--out", str(out)]) == 2
    err = one_line_error(capsys, "predict")
    assert all(name in err for name in names) and "would both be written as" in err
    assert not out.exists()
    assert tree_checksums(folder) == before


# --------------------------------------------------------------------------- bad numbers


@pytest.mark.parametrize("size", ["0", "-3"])
def test_predict_refuses_a_batch_size_under_one(size, world, model_path, capsys):
    out = world["tmp"] / "out"
    argv = ["predict", str(model_path), str(world["xrays"]), "--out", str(out)]
    assert main([*argv, "--batch-size", size]) == 2
    assert f"batch size must be 1 or more images, not {size}" in one_line_error(capsys, "predict")
    assert not out.exists()


@pytest.mark.parametrize("border", ["0", "13", "100000"])
def test_trimaps_refuses_a_border_out_of_range(border, world, capsys):
    out = world["tmp"] / "t2"
    assert main(["trimaps", str(world["root"]), "--out", str(out), "--border", border]) == 2
    err = one_line_error(capsys, "trimaps")
    if border == "0":
        assert "1 or more pixels" in err
    else:  # 48 pixels wide: at most 12
        assert "48 pixels wide" in err and "at most 12" in err and ".jpg:" in err
    assert not out.exists()
    assert main(["trimaps", str(world["root"]), "--out", str(out), "--border", "12"]) == 0


# --------------------------------------------------------------------------- a batch that fails


@pytest.mark.parametrize("batch_size", ["1", "4"])
def test_predict_that_fails_on_an_image_says_what_it_wrote(
    batch_size, tmp_path, model_path, capsys
):
    folder = tmp_path / "in"
    for i in range(5):
        lm = synthetic_landmarks(*SIZE, 0.04 * i)
        write_jpeg(folder / f"xray {i}.jpg", synthetic_xray(lm, SIZE, seed=i))
    truncate_file(folder / "xray 2.jpg", 0.5)
    before = tree_checksums(folder)
    out = tmp_path / "out"
    argv = ["predict", str(model_path), str(folder), "--out", str(out), "--batch-size", batch_size]
    assert main(argv) == 2
    err = one_line_error(capsys, "predict")
    assert f"error: {folder / 'xray 2.jpg'}: JPEG file is truncated" in err
    assert "wrote the trimaps of the first 2 image(s) (up to xray 1.jpg)" in err
    assert "none for the other 3 image(s)" in err
    # the two before it are complete trimaps; nothing for it or after it, no temporary files
    assert sorted(p.name for p in out.iterdir()) == ["xray 0.png", "xray 1.png"]
    assert all(read_trimap_png(p).shape == SIZE for p in out.iterdir())
    assert tree_checksums(folder) == before


# --------------------------------------------------------------------------- permissions


@pytest.mark.parametrize(
    ("umask", "file_mode", "folder_mode"), [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)]
)
def test_outputs_honour_the_umask(umask, file_mode, folder_mode, world, capsys):
    old = os.umask(umask)
    try:
        out = world["tmp"] / f"u{umask:o}"
        assert main(["cobb", str(world["root"]), "--csv", str(out / "angles.csv")]) == 0
        assert main(["gaps", str(world["trimaps"]), "--json", str(out / "gaps.json")]) == 0
        assert main(["trimaps", str(world["root"]), "--out", str(out / "t"), "--jobs", "1"]) == 0
    finally:
        os.umask(old)
    capsys.readouterr()
    files = [out / "angles.csv", out / "gaps.json", *sorted((out / "t").rglob("*.png"))]
    assert len(files) == 6
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(file_mode)}
    assert oct(out.stat().st_mode & 0o777) == oct(folder_mode)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc to name fds")
def test_a_write_is_fsynced_file_then_folder(tmp_path, monkeypatch):
    """Spy on the operating system's fsync (the real one still runs) to see what it syncs."""
    from napari_spine_seg.atomic import write_text_atomic

    synced = []
    real_fsync = os.fsync

    def spy(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    target = write_text_atomic(tmp_path / "out" / "a.json", "{}\n")
    assert len(synced) == 2
    assert Path(synced[0]).parent == target.parent and ".part" in synced[0]  # before the rename
    assert Path(synced[1]) == target.parent.resolve()  # the folder, after it
    assert target.read_text() == "{}\n"


# --------------------------------------------------------------------------- a full disk

# A full disk, for real and without root: RLIMIT_FSIZE makes every write past `limit`
# bytes fail with EFBIG ("File too large"), through the same OSError path as ENOSPC.
_LIMITED = textwrap.dedent(
    """
    import resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    from napari_spine_seg.cli import main
    sys.exit(main(sys.argv[2:]))
    """
)


def _run_limited(argv: list[str], limit: int = 8) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _LIMITED, str(limit), *argv],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _assert_write_failed(run: subprocess.CompletedProcess, command: str, out: Path) -> str:
    err = run.stderr.strip()
    assert run.returncode == 2, err
    assert err.startswith(f"spine-seg {command}: error: {out}"), err
    assert "\n" not in err and "Traceback" not in err and "_RemoteTraceback" not in err
    assert "cannot be written (File too large)" in err
    return err


def test_a_full_disk_is_one_line_and_leaves_no_half_written_file(world):
    tmp, root, trimaps = world["tmp"], world["root"], world["trimaps"]
    before = tree_checksums(tmp)
    out = tmp / "full"
    cases = [
        ("cobb", ["cobb", str(root), "--csv", str(out / "a.csv")]),
        ("evaluate", ["evaluate", str(trimaps), str(world["test"]), "--json", str(out / "e.json")]),
        ("gaps", ["gaps", str(trimaps), "--json", str(out / "g.json")]),
        ("trimaps", ["trimaps", str(root), "--out", str(out / "t"), "--jobs", "1"]),
    ]
    for command, argv in cases:
        _assert_write_failed(_run_limited(argv), command, out)
    assert not [p for p in out.rglob("*") if p.is_file()]  # no partial file, no .part file
    assert tree_checksums(tmp) == before


def test_a_full_disk_in_the_trimaps_process_pool_is_one_line(tmp_path):
    root = write_aasce_layout(tmp_path / "set", n_train=8, n_test=0, size=SIZE)
    before = tree_checksums(root)
    out = tmp_path / "t"
    # 100 bytes: room for the pool's 32-byte semaphores, none for a trimap PNG
    run = _run_limited(["trimaps", str(root), "--out", str(out), "--jobs", "2"], limit=100)
    _assert_write_failed(run, "trimaps", out)
    assert not [p for p in out.rglob("*") if p.is_file()]
    assert tree_checksums(root) == before


# the model is loaded before the limit (Keras unpacks its weights to a temporary file)
_PREDICT_LIMITED = textwrap.dedent(
    """
    import resource, signal, sys
    from napari_spine_seg.errors import SpineSegError
    from napari_spine_seg.model.files import load_model
    from napari_spine_seg.model.predict import predict_files
    model = load_model(sys.argv[1])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))
    try:
        predict_files(model, sys.argv[2:-1], sys.argv[-1], batch_size=2)
    except SpineSegError as exc:
        print(exc)
        sys.exit(2)
    """
)


def test_a_full_disk_in_predict_says_what_was_written(world, model_path):
    out = world["tmp"] / "p"
    before = tree_checksums(world["xrays"])
    run = subprocess.run(
        [sys.executable, "-c", _PREDICT_LIMITED, str(model_path), str(world["xrays"]), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2, run.stderr
    line = run.stdout.strip()
    assert line.startswith(f"{out / 'x0.png'}: cannot be written (File too large)"), line
    assert "wrote no trimap" in line and "none for the other 3 image(s)" in line
    assert not [p for p in out.rglob("*") if p.is_file()]
    assert tree_checksums(world["xrays"]) == before


def test_write_errors_name_the_file_in_the_core(tmp_path):
    """An OSError raised inside a writer becomes one SpineSegError naming the target."""
    from napari_spine_seg.atomic import atomic_output

    target = tmp_path / "x.json"
    target.write_text("old\n")
    with pytest.raises(SpineSegError, match=r"x\.json: cannot be written \(No space left"):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise OSError(28, "No space left on device", str(tmp))
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]  # no temporary left


# --------------------------------------------------------------------------- what is allowed


def test_ordinary_outputs_beside_the_inputs_are_allowed(world, tmp_path):
    """The checks refuse what would harm the inputs, not ordinary places to write."""
    from napari_spine_seg.outputs import check_output

    beside = tmp_path / "pred"
    assert check_output(beside, [world["xrays"], world["test"]], folder=True) == beside
    csv = tmp_path / "angles.csv"
    csv.write_text("an earlier run\n")
    assert check_output(csv, [world["root"]], suffixes=(".csv",)) == csv  # replaced: a CSV
    # a home folder that holds data/ and labels/ without a split is no data set
    home = tmp_path / "home"
    (home / "data" / "mine").mkdir(parents=True)
    (home / "labels" / "other").mkdir(parents=True)
    assert check_output(home / "data" / "p", [world["xrays"]], folder=True)
    (home / "labels" / "mine").mkdir()
    with pytest.raises(SpineSegError, match="data set's own folder"):
        check_output(home / "data" / "p", [world["xrays"]], folder=True)


def test_the_pets_layouts_own_folders_are_refused(tmp_path, capsys):
    pets = write_pets_layout(tmp_path / "pets")
    before = tree_checksums(pets)
    for inside in (pets / "images" / "p", pets / "annotations" / "trimaps"):
        assert main(["cobb", str(tmp_path / "pets"), "--csv", str(inside / "a.csv")]) == 2
        assert "data set's own folder" in one_line_error(capsys, "cobb")
        assert main(["synth", str(inside / "s"), "--train", "1", "--test", "0"]) == 2
        assert "data set's own folder" in one_line_error(capsys, "synth")
    assert tree_checksums(pets) == before


def test_every_promise_in_the_docs_names_a_test_that_exists():
    """docs/promises.md cites `tests/<file>.py::<test>`: each must be a test function."""
    import re

    page = Path(__file__).parent.parent / "docs" / "promises.md"
    cited = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", page.read_text(encoding="utf-8"))
    assert len(cited) >= 10
    for file, name in cited:
        source = (Path(__file__).parent.parent / file).read_text(encoding="utf-8")
        assert re.search(rf"^def {name}\(", source, re.MULTILINE), f"{file}::{name}"
