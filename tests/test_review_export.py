"""Exporting a review: trimaps at the original size, colour trimaps, overlays; never the dataset's labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _widget_helpers import tree_checksums
from napari_spine_seg.data.masks import is_predicted_trimap, read_colour_mask, read_trimap_png
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.review.export import colour_trimap, export_review, overlay_trimap
from napari_spine_seg.review.session import ReviewSession
from napari_spine_seg.trimap import LABEL_COLORS, trimap_from_mask

SHAPE = (128, 64)
NAMES = ("case 01 AP.jpg", "case 02 AP.jpg", "case 03 AP.jpg")


def column_trimap(shift=0):
    mask = np.zeros(SHAPE, dtype=bool)
    mask[8:-8, 24 + shift : 40 + shift] = True
    return trimap_from_mask(mask, border=2)


@pytest.fixture
def session(tmp_path):
    root = tmp_path / "data set"
    (root / "trimaps").mkdir(parents=True)
    for i, name in enumerate(NAMES):
        Image.fromarray(np.full(SHAPE, 40 * i, np.uint8)).save(root / name, quality=95)
        Image.fromarray(column_trimap()).save(root / "trimaps" / f"{Path(name).stem}.png")
    session = ReviewSession.open(tmp_path / "review", root)
    session.accept(NAMES[0], column_trimap())
    session.save_edit(NAMES[2], column_trimap(shift=4))
    session.accept(NAMES[2], column_trimap(shift=4))
    return session


def test_export_writes_reviewed_trimaps_colour_and_overlays(session, tmp_path):
    out = tmp_path / "export"
    done = []
    result = export_review(
        session, out, colour=True, overlay=True, progress=lambda i, n: done.append((i, n))
    )
    assert [p.name for p in result.trimaps] == ["case 01 AP.png", "case 03 AP.png"]
    assert result.skipped == [NAMES[1]]
    assert done == [(1, 2), (2, 2)]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "case 01 AP.png",
        "case 03 AP.png",
        "colour/case 01 AP.png",
        "colour/case 03 AP.png",
        "overlay/case 01 AP.png",
        "overlay/case 03 AP.png",
    ]
    assert set(result.written) == set(out.rglob("*.png"))
    corrected = read_trimap_png(out / "case 03 AP.png")
    assert corrected.shape == SHAPE
    assert np.array_equal(corrected, column_trimap(shift=4))
    with Image.open(out / "case 03 AP.png") as im:
        assert im.mode == "L"
    assert np.array_equal(
        read_colour_mask(out / "colour" / "case 03 AP.png"), column_trimap(shift=4)
    )
    with Image.open(out / "overlay" / "case 01 AP.png") as im:
        assert (im.mode, im.size) == ("RGB", (SHAPE[1], SHAPE[0]))
    assert (
        result.summary()
        == "wrote 2 trimaps, 2 colour trimaps, 2 overlays; 1 unreviewed image left out"
    )


def test_export_never_overwrites_the_datasets_labels(session):
    root = session.dataset.root
    before = tree_checksums(root)
    for out in (root / "trimaps", root, root / "exported"):
        with pytest.raises(
            SpineSegError, match=r"(is the data set folder|is inside the data set folder)"
        ):
            export_review(session, out)
    assert tree_checksums(root) == before


def test_export_refuses_an_unwritable_folder(session, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    with pytest.raises(SpineSegError, match="a file"):
        export_review(session, blocker / "out")


def test_colour_and_overlay_pixels():
    trimap = np.array([[1, 2], [3, 0]], np.uint8)
    assert colour_trimap(trimap).tolist() == [
        [[255, 0, 0], [0, 255, 0]],
        [[0, 0, 255], [0, 255, 0]],
    ]
    image = np.array([[100, 100], [100, 100]], np.uint16)  # min-max: a constant image is 0
    rgb = overlay_trimap(image, trimap)
    assert rgb[0, 1].tolist() == [0, 0, 0]  # background leaves the image alone
    r, g, b, alpha = LABEL_COLORS[1]
    assert rgb[0, 0].tolist() == [round(alpha * 255 * c) for c in (r, g, b)]
    with pytest.raises(SpineSegError, match="but its trimap is"):
        overlay_trimap(np.zeros((3, 3)), trimap)


def test_export_keeps_the_mark_of_a_reviewed_prediction(session, tmp_path):
    session.start_edit(NAMES[1], column_trimap(), predicted=True)
    session.accept(NAMES[1], column_trimap())
    result = export_review(session, tmp_path / "export")
    marked = {p.name: is_predicted_trimap(p) for p in result.trimaps}
    assert marked == {"case 01 AP.png": False, "case 02 AP.png": True, "case 03 AP.png": False}


def test_a_draft_is_left_out_with_a_line_that_says_so(session, tmp_path):
    # painted, never accepted: its trimap may be half done
    session.save_edit(NAMES[1], column_trimap(shift=-3))
    result = export_review(session, tmp_path / "export")
    assert [p.name for p in result.trimaps] == ["case 01 AP.png", "case 03 AP.png"]
    assert result.drafts == [NAMES[1]]
    assert result.summary() == (
        "wrote 2 trimaps; 1 draft (painted, never accepted) left out: accept to export"
    )
    session.accept(NAMES[1], column_trimap(shift=-3))
    again = export_review(session, tmp_path / "export")
    assert len(again.trimaps) == 3 and again.summary() == "wrote 3 trimaps"
