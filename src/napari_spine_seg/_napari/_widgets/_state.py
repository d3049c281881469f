"""What the widgets of one viewer share: the current model and the open review.

Training or loading makes a model current; prediction, the review queue and
retraining use it. The review widget's open session is what retraining learns from.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psygnal import Signal


@dataclass(frozen=True)
class ModelRef:
    """The current model as the GUI knows it: its file and metadata.

    The network itself lives in the model process
    (:mod:`~napari_spine_seg.jobs.model_process`), never in napari's.

    Attributes
    ----------
    path : pathlib.Path
    info : napari_spine_seg.model.files.ModelInfo
    """

    path: Path
    info: Any


class ViewerState:
    """The current model and review session of one viewer.

    Attributes
    ----------
    model : ModelRef or None
        The current model (its file and metadata).
    review : napari_spine_seg.review.session.ReviewSession or None
        The open review session.
    """

    model_changed = Signal(object)
    review_changed = Signal(object)

    def __init__(self):
        self.model: Any = None
        self.review: Any = None

    @property
    def model_path(self) -> Path | None:
        """File of the current model, or None."""
        return None if self.model is None else self.model.path

    def set_model(self, model) -> None:
        """Make `model` (a ModelRef) the current one and tell the widgets."""
        self.model = model
        self.model_changed.emit(model)

    def set_review(self, session) -> None:
        """Make `session` the open review and tell the widgets."""
        self.review = session
        self.review_changed.emit(session)


_STATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def viewer_state(viewer) -> ViewerState:
    """The shared state of `viewer` (created on first use, dropped with the viewer).

    napari hands each plugin widget its own proxy of the viewer; the state is kept
    for the viewer behind them, so that every widget of one viewer shares it.
    """
    viewer = getattr(viewer, "__wrapped__", viewer)
    state = _STATES.get(viewer)
    if state is None:
        state = _STATES[viewer] = ViewerState()
    return state
