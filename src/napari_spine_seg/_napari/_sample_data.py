"""npe2 sample data: "Spine X-ray (phantom)", a synthetic X-ray with its landmarks and trimap."""

from __future__ import annotations

import numpy as np

from ..data.phantom import make_phantom
from ..trimap import trimap_from_landmarks
from ._layers import image_layer, landmarks_layer, point_size, trimap_layer

#: the seed of the sample: the same phantom every time
SAMPLE_SEED = 0


def make_phantom_sample(seed: int = SAMPLE_SEED) -> list[tuple]:
    """One phantom X-ray (Image), its trimap (Labels) and its 68 landmarks (Points).

    Parameters
    ----------
    seed : int
        Seed of the phantom generator (:func:`~napari_spine_seg.data.phantom.make_phantom`).

    Returns
    -------
    list of tuple
        Three layer-data tuples: image, trimap, landmarks (markers drawn on top).
    """
    phantom = make_phantom(np.random.default_rng(seed))
    image = np.asarray(phantom.image)
    meta = {"image_shape": list(image.shape), "phantom_seed": int(seed)}
    return [
        image_layer(image, name="phantom X-ray", contrast_limits=(0, 255), metadata=meta),
        trimap_layer(
            trimap_from_landmarks(phantom.landmarks, image.shape),
            name="phantom trimap",
            metadata=meta,
        ),
        landmarks_layer(
            phantom.landmarks,
            name="phantom landmarks",
            size=point_size(image.shape[1]),
            metadata=meta,
        ),
    ]
