"""Predict: trimaps and spine probabilities for image layers, with the current model.

For each chosen image layer the widget adds ``<image> predicted trimap`` (Labels, at the
image's own resolution, in the trimap colours) and ``<image> predicted probability``
(hidden); a model that learnt the vertebrae adds ``<image> vertebrae`` (Labels, T1…L5)
and ``<image> landmarks`` (Points, the 68 corners where 17 were found) and says which
images' vertebrae have faults (:mod:`._vertebra_layers`); moving a corner paints its
vertebra again (:mod:`._corner_follow`). The names never take over a
reader's layers (a data set's ``<image> trimap`` is its ground truth, to compare
with): Predict again updates only the layers it made itself, which it knows by their
metadata, and a layer of the same name made by anything else stays as it is (napari gives the new one a free name). The layer selection stays
on what the person had. A stack opened from a dataset folder is predicted slice by
slice, each slice at its image's true size (the stack's padding is cropped before and
restored after).

Prediction runs in a worker thread. The layers to predict, and their pixels, are taken
when Predict is pressed; the results land on those layers even if the selection, the
layer order or the names change meanwhile.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import CheckBox, ProgressBar, PushButton, Select

from ...errors import SpineSegError
from ...jobs import model_process
from .._layers import METADATA_KEY, image_layer, predicted_layer_names, trimap_layer
from .._notify import notify_warning
from ._corner_follow import follow_corners
from ._dock import Dock
from ._vertebra_layers import fault_lines, vertebra_layers, vertebra_outputs
from ._workers import show_error, start_worker, status_label

if TYPE_CHECKING:
    import napari

#: metadata key naming the image layer a predicted layer was made from, and its role
PREDICTED_FROM = "predicted_from"
ROLE = "role"


def is_probability_layer(layer) -> bool:
    """Whether `layer` is a spine probability map (Predict's, or the review queue's)."""
    meta = layer.metadata.get(METADATA_KEY, {})
    return meta.get(ROLE) == "probability" or layer.name.endswith(" probability")


def predict_pixels(
    model, pixels: np.ndarray, *, tta: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``(trimap, probability)`` of one image with `model` (a ModelRef), at its size.

    Runs in the model process (:mod:`~napari_spine_seg.jobs.model_process`); blocks, so
    call it from a worker thread.
    """
    return model_process.call(
        model_process.predict_arrays, str(model.path), np.asarray(pixels), tta
    )


def predict_image(model, pixels: np.ndarray, *, tta: bool = False):
    """The :class:`~napari_spine_seg.model.predict.Prediction` of one image with `model`
    (a ModelRef), at its size, vertebrae included where the model has them.

    Runs in the model process; blocks, so call it from a worker thread.
    """
    return model_process.call(model_process.predict_one, str(model.path), np.asarray(pixels), tta)


def probability_layer_kwargs(name: str, metadata: dict | None = None, scale=None) -> dict[str, Any]:
    """Keyword arguments of a spine-probability Image layer (hidden, 0–1, magma)."""
    _, kwargs, _ = image_layer(None, name=name, scale=scale, metadata=metadata)
    kwargs.update(colormap="magma", contrast_limits=(0.0, 1.0), visible=False, opacity=0.6)
    return kwargs


def _image_slices(layer) -> tuple[list, list[tuple[int, int]] | None]:
    """The images of a layer: one array, or for a dataset stack a loader per slice."""
    data = layer.data[0] if layer.multiscale else layer.data
    meta = layer.metadata.get(METADATA_KEY, {})
    if data.ndim == 2:
        return [np.array(data)], None
    if data.ndim != 3 or layer.rgb:
        raise SpineSegError(None, f"layer {layer.name!r} is not a grayscale image or stack")
    shapes = [tuple(s) for s in meta.get("shapes", [data.shape[1:]] * data.shape[0])]
    return [(lambda i=i: np.asarray(data[i])) for i in range(data.shape[0])], shapes


class PredictWidget(Dock):
    """Predict the chosen image layers with the current model, in a thread.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    """

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer)
        self.model_label = status_label(label="model")
        self.images = Select(label="images", choices=self._image_choices, allow_multiple=True)
        self.tta = CheckBox(text="average with the mirrored image (slower)", value=False)
        self.predict_button = PushButton(text="Predict")
        self.progress = ProgressBar(value=0, min=0, max=1, label="progress", visible=False)
        self.message = status_label(label="")
        self.extend(
            [
                self.model_label,
                self.images,
                self.tta,
                self.predict_button,
                self.progress,
                self.message,
            ]
        )
        self.predict_button.clicked.connect(self.predict)
        self.state.model_changed.connect(self._show_model)
        self._show_model(self.state.model)
        for event in ("inserted", "removed", "reordered"):
            getattr(viewer.layers.events, event).connect(self._refresh_choices)
        viewer.layers.selection.events.changed.connect(self._follow_selection)
        self._refresh_choices()
        self._follow_selection()

    def _image_choices(self, _widget=None) -> list[tuple[str, Any]]:
        from napari.layers import Image

        return [
            (layer.name, layer)
            for layer in self.viewer.layers
            if isinstance(layer, Image) and not is_probability_layer(layer)
        ]

    def _refresh_choices(self, _event=None) -> None:
        self.images.reset_choices()

    def _follow_selection(self, _event=None) -> None:
        chosen = [layer for layer in self.viewer.layers.selection if layer in self.images.choices]
        if chosen:
            self.images.value = chosen

    def _show_model(self, model) -> None:
        self.model_label.value = "none: train or load one" if model is None else model.path.name
        self.predict_button.enabled = model is not None

    def _say(self, text: str) -> None:
        self.message.value = text

    def _fail(self, exc: BaseException) -> None:
        show_error(self.message, exc)

    def predict(self) -> None:
        """Predict every chosen image layer in a worker thread; results land as they come."""
        model = self.state.model
        layers = list(self.images.value)
        if model is None:
            self._fail(SpineSegError(None, "no model: train or load one first"))
            return
        if not layers:
            self._fail(SpineSegError(None, "choose an image layer to predict"))
            return
        try:
            jobs = [(layer, *_image_slices(layer)) for layer in layers]
        except SpineSegError as exc:
            self._fail(exc)
            return
        tta = self.tta.value
        total = sum(len(images) for _, images, _ in jobs)

        def run():
            done = 0
            for layer, images, shapes in jobs:
                results = []
                for i, image in enumerate(images):
                    pixels = image() if callable(image) else image
                    if shapes is not None:
                        pixels = pixels[: shapes[i][0], : shapes[i][1]]
                    results.append(predict_image(model, pixels, tta=tta))
                    done += 1
                    yield ("progress", done)
                yield ("layer", (layer, results, shapes))

        def on_yield(item):
            kind, value = item
            if kind == "progress":
                self.progress.value = value
            else:
                self._land(*value)

        def finish():
            self.progress.visible = False
            self.predict_button.enabled = self.state.model is not None

        self.progress.max = total
        self.progress.value = 0
        self.progress.visible = True
        self.predict_button.enabled = False
        self._say(f"predicting {total} image{'s' if total != 1 else ''}…")
        start_worker(
            run, on_yield=on_yield, on_error=self._fail, on_finish=finish, keep_in=self._workers
        )

    def _land(self, layer, results, shapes) -> None:
        """Add (or update) the trimap and probability layers of `layer`, on the GUI thread."""
        full = layer.data[0].shape if layer.multiscale else layer.data.shape
        if shapes is None:
            trimap, probability = results[0].trimap, results[0].probability
            meta = {"image_shape": list(trimap.shape)}
        else:
            trimap = np.zeros(full, np.uint8)
            probability = np.zeros(full, np.float32)
            for i, (result, (rows, cols)) in enumerate(zip(results, shapes, strict=True)):
                trimap[i, :rows, :cols] = result.trimap
                probability[i, :rows, :cols] = result.probability
            source = layer.metadata.get(METADATA_KEY, {})
            meta = {"names": source.get("names"), "shapes": [list(s) for s in shapes]}
        # where the image came from: the writer never saves the trimap over the data set
        source_meta = layer.metadata.get(METADATA_KEY, {})
        meta.update({k: source_meta[k] for k in ("path", "paths", "source") if k in source_meta})
        meta["image_layer"] = layer.name
        meta["predicted"] = True  # its Cobb angles are measured as a network's outline
        meta[PREDICTED_FROM] = layer.name
        meta["prediction"] = uuid.uuid4().hex  # pairs the two layers, whatever their names
        scale = tuple(layer.scale)
        trimap_name, probability_name, *_ = predicted_layer_names(layer.name)
        selection = self.viewer.layers.selection
        selected, active = list(selection), selection.active
        self._put_layer(
            trimap, trimap_layer(trimap, name=trimap_name, scale=scale, metadata=meta), "trimap"
        )
        prob_meta = {**meta, ROLE: "probability"}
        prob_kwargs = probability_layer_kwargs(probability_name, prob_meta, scale)
        self._put_layer(probability, (probability, prob_kwargs, "image"), "probability")
        self._land_vertebrae(layer, results, shapes, full, meta, scale)
        if list(selection) != selected or selection.active is not active:
            selection.clear()
            selection.update(selected)
            selection.active = active
        self._say(f"predicted {layer.name}")

    def _land_vertebrae(self, layer, results, shapes, full, meta, scale) -> None:
        """Add the vertebrae and landmarks layers of a vertebra model; notify faults."""
        outputs = [vertebra_outputs(result) for result in results]
        placed = {
            role: self._put_layer(layer_tuple[0], layer_tuple, role)
            for layer_tuple, role in vertebra_layers(
                layer.name, outputs, shapes, full_shape=full, metadata=meta, scale=scale
            )
        }
        if placed.get("landmarks", (None, False))[1]:  # a new pair: corners drive bodies
            follow_corners(placed["landmarks"][0], placed["vertebrae"][0])
        names = meta.get("names") or [f"image {i + 1}" for i in range(len(outputs))]
        lines = fault_lines([layer.name] if shapes is None else names, outputs)
        if lines:
            notify_warning("vertebrae: " + "\n".join(lines))

    def _put_layer(self, data, layer_tuple, role: str) -> tuple[Any, bool]:
        """Update the layer this widget made earlier for the same image, else add one;
        return the layer and whether it is new."""
        from napari.layers import Layer

        kwargs = layer_tuple[1]
        meta = kwargs["metadata"][METADATA_KEY]
        meta.setdefault(ROLE, role)
        for existing in self.viewer.layers:
            mine = existing.metadata.get(METADATA_KEY, {})
            if mine.get(PREDICTED_FROM) == meta[PREDICTED_FROM] and mine.get(ROLE) == role:
                # the new prediction's id first: its data is then no edit (follow_corners)
                existing.metadata = kwargs["metadata"]
                existing.data = data
                if "features" in kwargs:  # landmarks: as many rows as points
                    existing.features = kwargs["features"]
                return existing, False
        return self.viewer.add_layer(Layer.create(*layer_tuple)), True
