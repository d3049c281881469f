"""Make docs/screenshots/workflow-*.png: each step of the review workflow, in a real napari.

Writes a small phantom set, then drives the four dock widgets as a person would:
train a U-Net (screenshot mid-training: progress bar and live plot), predict an X-ray
(``<image> predicted trimap`` and the hidden ``… predicted probability``), inspect its gaps (listed, marked, the camera on
one), review the test split worst-first and paint a correction (autosaved), export the
reviewed trimaps with overlays, and retrain on the corrections. napari needs an OpenGL
context, so run it under Xvfb::

    xvfb-run -a python scripts/screenshot_workflow.py [--out docs/screenshots] [--epochs 6]

It trains for real (a few minutes on two CPU cores); the model is deliberately young,
so that its predictions have gaps to show.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    """Write the screenshots; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs")
    parser.add_argument("--train", type=int, default=24, help="training phantoms")
    args = parser.parse_args(argv)
    if args.work is None:
        with tempfile.TemporaryDirectory(prefix="spine-seg-workflow-") as work:
            return run(args, Path(work))
    return run(args, args.work)


def run(args, work: Path) -> int:
    import napari
    import napari._qt.qt_main_window as qt_main_window
    import numpy as np
    from napari.utils._proxies import PublicOnlyProxy

    # napari's toast about the PyQt5 binding would cover the picture; not ours to show
    qt_main_window.SHOW_QT_WARNING = False

    from napari_spine_seg._napari._widgets.gaps_widget import GapsWidget
    from napari_spine_seg._napari._widgets.predict_widget import PredictWidget
    from napari_spine_seg._napari._widgets.review_widget import ReviewWidget
    from napari_spine_seg._napari._widgets.train_widget import TrainWidget
    from napari_spine_seg.atomic import atomic_output
    from napari_spine_seg.data.dataset import open_dataset
    from napari_spine_seg.data.phantom import write_phantom_set

    app = napari.qt.get_qapp()

    def wait(condition, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > end:
                raise SystemExit(f"screenshot_workflow: gave up waiting for {what}")
            app.processEvents()
            time.sleep(0.02)

    def settle(seconds: float = 0.5) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.02)

    def shoot(name: str) -> None:
        settle()
        path = args.out / f"workflow-{name}.png"
        with atomic_output(path) as tmp_png:
            viewer.screenshot(str(tmp_png), canvas_only=False)
        print(f"wrote {path}")

    root = write_phantom_set(work / "phantoms", n_train=args.train, n_test=4, seed=7)
    model_path = work / "phantoms-unet.keras"

    viewer = napari.Viewer(title="napari-spine-seg: review workflow", show=True)
    viewer.window.resize(1500, 980)
    proxy = PublicOnlyProxy(viewer)  # as napari hands it to plugin widgets
    widgets = {
        "Train or load model": TrainWidget(proxy),
        "Predict": PredictWidget(proxy),
        "Gap inspector": GapsWidget(proxy),
        "Review queue": ReviewWidget(proxy),
    }
    docks = {
        name: viewer.window.add_dock_widget(w, name=name, area="right", tabify=True)
        for name, w in widgets.items()
    }
    viewer.window.resize(1500, 980)

    def show_only(name: str) -> None:
        docks[name].raise_()
        settle(0.3)

    # 1. train, with the training split open as a stack (images, landmarks, trimaps)
    viewer.open(root / "data" / "training", plugin="napari-spine-seg")
    show_only("Train or load model")
    viewer.window._status_bar._toggle_activity_dock(True)  # the progress bars
    train = widgets["Train or load model"]
    train.dataset.value = root
    train.out.value = model_path
    train.epochs.value = args.epochs
    train.start()
    wait(lambda: len(train.plot.history) >= max(2, args.epochs - 2), 1800, "training epochs")
    shoot("train")
    wait(lambda: not train.running and train.state.model is not None, 1800, "training's end")

    # 2. predict an X-ray of the test split
    from napari_spine_seg.data.images import read_xray

    viewer.window._status_bar._toggle_activity_dock(False)
    viewer.layers.clear()
    settle(1.0)

    test = open_dataset(root / "data" / "test")
    sample = test.samples[0]
    stem = Path(sample.name).stem
    viewer.add_image(read_xray(sample.image_path).pixels, name=stem, colormap="gray")
    show_only("Predict")
    predict = widgets["Predict"]
    predict.images.value = [predict.images.choices[0]]
    predict.predict()
    wait(lambda: f"{stem} predicted probability" in viewer.layers, 600, "the prediction")
    viewer.layers.selection.active = viewer.layers[f"{stem} predicted trimap"]
    viewer.reset_view()
    shoot("predict")

    # 3. gaps
    show_only("Gap inspector")
    gaps = widgets["Gap inspector"]
    gaps.trimap.value = next(
        c for c in gaps.trimap.choices if c is not None and c.name == f"{stem} predicted trimap"
    )
    gaps.analyse()
    wait(lambda: gaps.summary.value != "–" and not gaps._workers, 120, "the gap analysis")
    if gaps.gaps:
        gaps.next_gap()
    shoot("gaps")

    # 4. review the test split worst-first; paint a correction across the worst gap
    viewer.layers.clear()
    settle(1.0)
    show_only("Review queue")
    review = widgets["Review queue"]
    review.dataset_edit.value = root / "data" / "test"
    review.folder_edit.value = work / "review"
    review.order.value = "worst"
    review.open_review()
    wait(lambda: review.session is not None and review.session.order == "worst", 900, "ranking")
    wait(lambda: review._key is not None, 300, "the first image")
    labels = review.trimap_layer
    correct_young_prediction(labels, review.session.current.load_landmarks())
    settle(0.5)
    viewer.reset_view()
    shoot("review")

    # 5. accept the rest and export with overlays
    review.accept_and_next()
    wait(lambda: review._key is not None, 300, "the next image")
    review.accept_and_next()
    wait(lambda: review._key is not None, 300, "the next image")
    review.export_edit.value = work / "export"
    review.overlay_check.value = True
    review.colour_check.value = True
    review.export()
    wait(lambda: hasattr(review, "last_export"), 300, "the export")
    corrected = review.session.reviewed_keys(("corrected",))
    wanted = Path(corrected[0]).stem if corrected else None
    overlay = next(
        (p for p in review.last_export.overlays if p.stem == wanted),
        review.last_export.overlays[0],
    )
    from PIL import Image

    viewer.add_image(
        np.asarray(Image.open(overlay)), name=f"exported overlay: {overlay.name}", rgb=True
    )
    for layer in list(viewer.layers)[:-1]:
        layer.visible = False
    viewer.reset_view()
    shoot("export")

    # 6. retrain on the corrections
    show_only("Train or load model")
    train.retrain_epochs.value = 2
    train.retrain()
    wait(lambda: not train.running, 1800, "retraining")
    if train.offered is not None:  # scored lower than the young model: the person chooses
        train.use_new_model()
    wait(lambda: train.state.model.path != model_path, 300, "the retrained model")
    shoot("retrain")
    viewer.close()
    return 0


def correct_young_prediction(labels, landmarks) -> None:
    """Paint the correction a person would make on a young model's prediction.

    Where the column runs on into the sacrum, erase (paint background over) what lies
    below the last vertebra; otherwise fill, with the polygon tool, the vertebra the
    prediction covers least.
    """
    import numpy as np
    from skimage.draw import polygon

    spine = np.asarray(labels.data) == 1
    bottom = int(landmarks[:, 1].max()) + 3
    rows = [r for r in range(bottom, spine.shape[0]) if spine[r].any()]
    if rows:
        labels.selected_label = 2
        cols = np.flatnonzero(spine[rows].any(axis=0))
        labels.brush_size = int(cols.max() - cols.min()) + 8
        for r in range(rows[0], rows[-1] + labels.brush_size // 2, max(2, labels.brush_size // 3)):
            labels.paint((r, float(cols.mean())), 2)
    else:
        # corners TL, TR, BL, BR (x, y) per vertebra; the outline goes TL, TR, BR, BL
        quads = landmarks.reshape(-1, 4, 2)[:, [0, 1, 3, 2]]
        missed = []
        for quad in quads:
            rr, cc = polygon(quad[:, 1], quad[:, 0], spine.shape)
            missed.append(1.0 - spine[rr, cc].mean() if rr.size else 0.0)
        worst = quads[int(np.argmax(missed))]
        labels.paint_polygon(worst[:, ::-1], 1)
    labels.selected_label = 1


if __name__ == "__main__":
    raise SystemExit(main())
