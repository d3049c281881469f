"""Worst-first review order: how much each image needs a person's eye.

An image's :class:`Priority` comes from its predicted trimap (the gaps
:func:`~napari_spine_seg.spine.gaps.find_gaps` finds) and, when there is one, the
network's probability map (its uncertainty); :func:`worst_first` sorts a queue by it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import numpy as np

from ..spine.gaps import find_gaps
from ..trimap import validate_trimap

#: probabilities below this are "surely background" and left out of the uncertainty
_UNCERTAINTY_FLOOR = 0.05


@dataclass(frozen=True)
class Priority:
    """How much an image needs a person's eye: the worst-first sort key.

    Attributes
    ----------
    gaps : int
        Number of faults :func:`~napari_spine_seg.spine.gaps.find_gaps` reports.
    uncertainty : float
        Mean of ``1 - |2p - 1|`` over the pixels whose spine probability ``p`` is at
        least 0.05: 0 for a model sure of every pixel, 1 when all are 0.5.
    """

    gaps: int
    uncertainty: float
    breaks: int = 0
    low_confidence: float = 0.0

    def describe(self) -> str:
        """Why the image ranks where it does, in a few words.

        Examples
        --------
        >>> Priority(3, 0.08, breaks=2, low_confidence=0.12).describe()
        '3 gaps (2 breaks), 12 % of rows low-confidence, uncertainty 0.08'
        """
        gaps = f"{self.gaps} gap{'' if self.gaps == 1 else 's'}"
        if self.breaks:
            gaps += f" ({self.breaks} break{'' if self.breaks == 1 else 's'})"
        low = f"{100 * self.low_confidence:.0f} % of rows low-confidence"
        return f"{gaps}, {low}, uncertainty {self.uncertainty:.2f}"

    def to_dict(self) -> dict:
        """Plain values, for JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping) -> Priority:
        """The priority :meth:`to_dict` wrote.

        Raises
        ------
        TypeError, ValueError, KeyError
            When `values` is not such a dict.
        """
        return cls(
            gaps=int(values["gaps"]),
            uncertainty=float(values["uncertainty"]),
            breaks=int(values.get("breaks", 0)),
            low_confidence=float(values.get("low_confidence", 0.0)),
        )


def review_priority(trimap: np.ndarray, probability: np.ndarray | None = None) -> Priority:
    """Score a predicted trimap for worst-first review: its gaps, then its uncertainty.

    Parameters
    ----------
    trimap : (H, W) array
        Predicted trimap (1 spine, 2 background, 3 border; 0 read as background).
    probability : (H, W) float array, optional
        Spine probability in [0, 1] at the trimap's size; without it the uncertainty
        is 0 and the gap finder skips its low-confidence test.

    Returns
    -------
    Priority

    Examples
    --------
    >>> import numpy as np
    >>> review_priority(np.full((8, 4), 2, np.uint8), np.full((8, 4), 0.5)).uncertainty
    1.0
    """
    trimap = validate_trimap(trimap)
    gaps = find_gaps(trimap, probability)
    uncertainty = 0.0
    if probability is not None:
        p = np.asarray(probability, dtype=np.float64)
        considered = p[p >= _UNCERTAINTY_FLOOR]
        if considered.size:
            uncertainty = float(np.mean(1.0 - np.abs(2.0 * considered - 1.0)))
    low_rows = sum(g.height for g in gaps if g.kind == "low-confidence")
    return Priority(
        gaps=len(gaps),
        uncertainty=uncertainty,
        breaks=sum(g.kind == "break" for g in gaps),
        low_confidence=min(1.0, low_rows / max(1, trimap.shape[0])),
    )


def worst_first(keys: Iterable[str], priorities: Mapping[str, Priority]) -> list[str]:
    """Order `keys` by most gaps, then most uncertainty; ties keep their given order.

    Keys without a priority go last, in their given order.

    Examples
    --------
    >>> worst_first(["a", "b", "c"], {"a": Priority(0, 0.2), "b": Priority(2, 0.1)})
    ['b', 'a', 'c']
    """
    keys = list(keys)

    def rank(item):
        position, key = item
        p = priorities.get(key)
        if p is None:
            return (1, 0, 0.0, position)
        return (0, -p.gaps, -p.uncertainty, position)

    return [key for _, key in sorted(enumerate(keys), key=rank)]
