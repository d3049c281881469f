"""Gap finding on trimaps, and ``spine-seg gaps``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from napari_spine_seg.cli import main
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.spine.gaps import KINDS, Gap, find_gaps
from napari_spine_seg.trimap import trimap_from_landmarks, trimap_from_mask
from test_cobb import make_spine


def _spine_trimap(rng):
    landmarks, shape = make_spine(rng)
    return trimap_from_landmarks(landmarks, shape)


def _column_rows(trimap):
    rows = np.flatnonzero((trimap == 1).any(axis=1))
    return rows[0], rows[-1]


def _cut(trimap, rng, n_cuts):
    """Cut the column across `n_cuts` times (3–7 % of its height each); return the centres."""
    top, bottom = _column_rows(trimap)
    height = bottom - top
    out = trimap.copy()
    centres = []
    for _ in range(200):
        if len(centres) == n_cuts:
            break
        size = int(np.ceil(rng.uniform(0.03, 0.07) * height))
        centre = int(rng.uniform(top + 0.08 * height, bottom - 0.08 * height))
        if any(abs(centre - c) < size + 0.08 * height for c in centres):
            continue
        out[centre - size // 2 : centre - size // 2 + size] = 2
        centres.append(centre)
    return out, centres


def test_finds_cuts_across_ground_truth_columns():
    rng = np.random.default_rng(21)
    n_cuts = found = false_alarms = 0
    n_images = 40
    for i in range(n_images):
        trimap, centres = _cut(_spine_trimap(rng), rng, i % 4)
        gaps = find_gaps(trimap)
        n_cuts += len(centres)
        found += sum(any(g.kind == "break" and abs(g.row - c) <= 30 for g in gaps) for c in centres)
        false_alarms += sum(not any(abs(g.row - c) <= 30 for c in centres) for g in gaps)
    assert n_cuts >= 50
    assert found / n_cuts >= 0.95, (found, n_cuts)
    assert false_alarms / n_images <= 0.25, false_alarms


def test_intact_columns_have_no_gaps():
    rng = np.random.default_rng(22)
    for _ in range(20):
        assert find_gaps(_spine_trimap(rng)) == []


def _column(shape=(300, 100), rows=(20, 280), cols=(35, 65)):
    mask = np.zeros(shape, bool)
    mask[rows[0] : rows[1], cols[0] : cols[1]] = True
    return mask


def test_break_row_col_height():
    mask = _column()
    mask[100:120] = False
    gaps = find_gaps(trimap_from_mask(mask, border=2))
    # the border band takes 2 px off each side of the spine label
    assert gaps == [Gap(row=110, col=50, height=24, kind="break")]


def test_min_gap_rows():
    mask = _column()
    mask[150:152] = False
    trimap = trimap_from_mask(mask, border=0)
    assert [g.kind for g in find_gaps(trimap)] == ["break"]
    assert find_gaps(trimap, min_gap_rows=3) == []


def test_hole_extra_component_and_narrowing():
    mask = _column()
    mask[60:70, 45:55] = False  # a hole
    mask[150:160, 80:95] = True  # a piece beside the column
    mask[220:226, 35:58] = False  # the column narrows to 7 px of 30
    gaps = find_gaps(trimap_from_mask(mask, border=0))
    by_kind = {g.kind: g for g in gaps}
    assert sorted(by_kind) == ["extra-component", "hole", "narrowing"]
    assert by_kind["hole"] == Gap(65, 50, 10, "hole")
    assert by_kind["extra-component"] == Gap(155, 87, 10, "extra-component")
    narrowing = by_kind["narrowing"]
    assert narrowing.height == 6 and 220 <= narrowing.row < 226
    assert [g.row for g in gaps] == sorted(g.row for g in gaps)


def test_low_confidence_needs_a_probability_map():
    mask = _column()
    trimap = trimap_from_mask(mask, border=0)
    prob = np.where(mask, 0.9, 0.05)
    prob[200:230, 40:60] = 0.3
    assert find_gaps(trimap) == []
    assert find_gaps(trimap, prob) == [Gap(215, 50, 30, "low-confidence")]
    # 8-bit probability images are read as 0-255
    assert find_gaps(trimap, (prob * 255).astype(np.uint8)) == [Gap(215, 50, 30, "low-confidence")]
    with pytest.raises(SpineSegError, match="must match"):
        find_gaps(trimap, prob[:-1])


def test_low_confidence_inside_a_break_is_not_repeated():
    mask = _column()
    mask[100:120] = False
    prob = np.where(mask, 0.9, 0.05)
    gaps = find_gaps(trimap_from_mask(mask, border=0), prob)
    assert [g.kind for g in gaps] == ["break"]


def test_empty_trimap_is_one_big_break():
    gaps = find_gaps(np.full((120, 40), 2, np.uint8))
    assert gaps == [Gap(60, 20, 120, "break")]
    assert set(KINDS) >= {g.kind for g in gaps}
    with pytest.raises(SpineSegError, match="2-D"):
        find_gaps(np.full((4, 4, 3), 2))


def test_gap_to_dict_is_json_ready():
    d = Gap(np.int64(3), np.int64(4), 5, "hole").to_dict()
    assert d == {"row": 3, "col": 4, "height": 5, "kind": "hole"}
    assert json.loads(json.dumps(d)) == d


# --------------------------------------------------------------------------- the CLI


def _write_png(path, array, mode="L"):
    Image.fromarray(np.asarray(array, np.uint8), mode=mode).save(path)


def test_cli_writes_json_and_summary(tmp_path, capsys):
    folder = tmp_path / "pred"
    folder.mkdir()
    intact = trimap_from_mask(_column(), border=2)
    broken = intact.copy()
    broken[100:120] = 2
    _write_png(folder / "a b.png", intact)
    _write_png(folder / "c.png", broken)
    _write_png(folder / "overlay.png", np.zeros((10, 10, 3)), mode="RGB")  # not a trimap
    out = tmp_path / "gaps.json"
    assert main(["gaps", str(folder), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data == {
        "a b.png": [],
        "c.png": [{"row": 110, "col": 50, "height": 20, "kind": "break"}],
    }
    stdout = capsys.readouterr().out
    assert "2 trimap(s), 1 with something to look at" in stdout
    assert "c.png: 1 break" in stdout
    assert "skipped 1 PNG file(s)" in stdout
    assert not list(tmp_path.glob(".gaps*"))  # no temporary file left


@pytest.mark.parametrize(
    ("make_source", "message"),
    [
        (lambda p: p / "missing", "is not a folder"),
        (lambda p: p, "has no trimap PNGs"),
    ],
)
def test_cli_bad_source_is_one_line_exit_2(tmp_path, capsys, make_source, message):
    (tmp_path / "x.txt").write_text("not an image")
    assert main(["gaps", str(make_source(tmp_path))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("spine-seg gaps: error: ") and message in err[0]


def test_cli_unwritable_json_is_reported_before_work(tmp_path, capsys):
    folder = tmp_path / "pred"
    folder.mkdir()
    _write_png(folder / "a.png", trimap_from_mask(_column(), border=2))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["gaps", str(folder), "--json", str(blocker / "gaps.json")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_every_phantom_spine_is_plausible_and_a_blob_is_not():
    from napari_spine_seg.data.phantom import make_phantom
    from napari_spine_seg.spine.gaps import column_shape, implausible
    from napari_spine_seg.trimap import trimap_from_landmarks

    for seed in range(12):
        for curve in ("straight", "C", "S"):
            ph = make_phantom(np.random.default_rng(seed), curve=curve)
            trimap = trimap_from_landmarks(ph.landmarks, ph.image.shape)
            assert implausible(column_shape(trimap)) == [], (seed, curve)
    blob = np.full((400, 200), 2, np.uint8)
    blob[150:250, 20:180] = 1
    reasons = implausible(column_shape(blob))
    assert any("height" in r for r in reasons) and any("wide" in r for r in reasons)
    assert implausible(column_shape(np.full((40, 20), 2, np.uint8))) == ["no spine"]
    specks = np.full((400, 200), 2, np.uint8)
    for col in range(10, 190, 20):
        specks[100:300, col : col + 4] = 1  # nine bars side by side
    assert any("9 pieces" in r for r in implausible(column_shape(specks)))


def test_corrections_are_certain():
    from napari_spine_seg.spine.gaps import with_corrections

    prob = np.full((4, 4), 0.4)
    trimap = np.array([[1, 2, 3, 0]] * 4, np.uint8)
    painted = np.zeros((4, 4), bool)
    painted[:2] = True
    out = with_corrections(prob, trimap, painted)
    assert out[:2].tolist() == [[1.0, 0.0, 0.0, 0.0]] * 2
    assert np.all(out[2:] == 0.4)
    assert np.all(with_corrections((prob * 255).astype(np.uint8), trimap, None) == 102 / 255)


def test_checked_gaps_file_round_trip(tmp_path):
    from napari_spine_seg.spine.gaps import is_checked, read_checked, write_checked

    path = tmp_path / "gaps-checked.json"
    assert read_checked(path) == {}
    gap = Gap(100, 50, 20, "break")
    write_checked(path, {"a.jpg": [gap], "b.jpg": []})
    assert read_checked(path) == {"a.jpg": [gap]}
    assert is_checked(Gap(104, 52, 18, "break"), [gap])  # moved a little by an edit
    assert not is_checked(Gap(104, 52, 18, "narrowing"), [gap])
    assert not is_checked(Gap(160, 50, 20, "break"), [gap])
    path.write_text("[1, 2]")
    with pytest.raises(SpineSegError, match="not a file of checked gaps"):
        read_checked(path)
