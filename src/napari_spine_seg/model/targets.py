"""What a network learns from a sample: the trimap, or the vertebrae (no Keras needed).

A *trimap* model learns the three trimap classes (spine, background, border). A
*vertebrae* model learns, from the landmarks, each vertebra's body, the intervertebral
spaces between bodies inside the column, and the background
(:func:`~napari_spine_seg.spine.vertebrae.body_space_target`); it does not learn the
border band. Its trimap is derived: spine = body ∪ space, and the band is drawn at a
fixed width around that column's outline (:func:`~napari_spine_seg.trimap.border_band`),
as a trimap drawn from landmarks has it. A border class would hide exactly the pixels
where the bodies' corners lie (on the column's outline), which the corner fit needs.

A vertebrae model can still learn from a sample that has only a trimap (a reviewer's
correction): its spine pixels are labelled *column* (body or space, either will do)
and its border band is ignored, so the column's outline is trained and the split into
bodies and spaces is left to the samples with landmarks.

Labels are stored (in the array cache) as class index + 1, the trimap's own values for
a trimap model; for a vertebrae model :data:`V_BODY` … :data:`V_IGNORE`.
"""

from __future__ import annotations

import numpy as np

from ..errors import SpineSegError
from ..spine.vertebrae import BODY, SPACE, body_space_target
from ..trimap import BACKGROUND, SPINE

TRIMAP, VERTEBRAE = "trimap", "vertebrae"
#: the outputs a model file lists (``ModelInfo.outputs``) per target
MODEL_OUTPUTS = {TRIMAP: [TRIMAP], VERTEBRAE: [TRIMAP, VERTEBRAE]}

#: stored label values of the vertebrae target (class index + 1; the network has the
#: first three as classes, the last two only label trimap-only samples)
V_BODY, V_SPACE, V_BACKGROUND, V_COLUMN, V_IGNORE = 1, 2, 3, 4, 5
#: model class indices of a vertebrae model
BODY_CLASS, SPACE_CLASS, BACKGROUND_CLASS, COLUMN_LABEL, IGNORE_LABEL = 0, 1, 2, 3, 4
#: votes of the space label when the target is shrunk to the network input
#: (``preprocess.fit_labels``): at 1.5 a 1.5 px disc survives, so that no two bodies of
#: the 40 default phantoms merge (11 of 40 images had merged bodies at 1), and the
#: space's share of the column stays near its full-size share (0.217 against 0.199;
#: 0.180 at 1)
SPACE_VOTES = 1.5
#: vote weights of the stored labels V_BODY … V_IGNORE
LABEL_VOTES = (1.0, SPACE_VOTES, 1.0, 1.0, 1.0)
#: model class index → (trimap value, name) of a vertebrae model
VERTEBRA_CLASSES = [
    {"index": BODY_CLASS, "trimap": SPINE, "name": "body"},
    {"index": SPACE_CLASS, "trimap": SPINE, "name": "space"},
    {"index": BACKGROUND_CLASS, "trimap": BACKGROUND, "name": "background"},
]


def has_vertebrae(sample) -> bool:
    """Whether `sample` labels its vertebrae: landmarks, and no trimap file overriding them."""
    return (
        getattr(sample, "landmarks_path", None) is not None
        and getattr(sample, "trimap_path", None) is None
    )


def resolve_target(requested: str, samples) -> str:
    """The target a training learns: `requested`, with "auto" decided by the samples.

    Parameters
    ----------
    requested : {"auto", "trimap", "vertebrae"}
    samples : sequence of Sample

    Returns
    -------
    {"trimap", "vertebrae"}
        "auto" is "vertebrae" when every sample has landmarks (:func:`has_vertebrae`).

    Raises
    ------
    SpineSegError
        "vertebrae" asked for samples of which none has landmarks.
    """
    samples = list(samples)
    if requested == "auto":
        return VERTEBRAE if samples and all(has_vertebrae(s) for s in samples) else TRIMAP
    if requested == VERTEBRAE and not any(has_vertebrae(s) for s in samples):
        first = samples[0].image_path if samples else None
        raise SpineSegError(
            first,
            "no training image has landmarks, and a vertebrae model learns them from "
            "landmarks; train the trimap output (outputs trimap)",
        )
    return requested


def vertebra_labels(sample) -> np.ndarray:
    """The vertebrae target of `sample` at its image's size (values :data:`V_BODY` …).

    From the landmarks: body, space, background. From a trimap file: column (spine),
    background, and ignore (the border band).
    """
    if has_vertebrae(sample):
        target = body_space_target(sample.load_landmarks(), sample.image_shape())
        lookup = np.full(256, V_BACKGROUND, dtype=np.uint8)
        lookup[BODY], lookup[SPACE] = V_BODY, V_SPACE
        return lookup[target]
    trimap = sample.load_trimap()
    lookup = np.full(256, V_IGNORE, dtype=np.uint8)
    lookup[SPINE], lookup[BACKGROUND] = V_COLUMN, V_BACKGROUND
    return lookup[trimap]
