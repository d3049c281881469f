"""Faults in one image's 68 vertebra landmarks, and the fixes that are certain.

The public AASCE labels hold faults (``docs/aasce-format.md``, "Known faults in the
public labels"; ``docs/landmarks.md``). :func:`find_faults` looks for them in one
``(68, 2)`` landmark array with nothing but the landmarks and the image size, by
comparing each vertebra with its neighbours. Every length is measured in the image's own
unit, the median distance between consecutive vertebra centres, and every position is
judged against the neighbours, so a clean spine that is strongly curved or strongly
wedged looks as regular as a straight one.

The checks, in the order they run (later checks work on the landmarks with the certain
fixes of earlier ones applied):

``outside_image``
    a corner lies outside the image.
``duplicate_vertebra``
    a vertebra lies on top of the one before it (copied, or points piled up where a
    vertebra could not be told).
``vertebra_order``
    the vertebrae are not listed top to bottom (e.g. the last one listed first). The
    vertebrae that are not in the longest run in order are the ones listed out of place.
``top_bottom_swapped`` / ``left_right_swapped``
    a vertebra's corners are not in the order top-left, top-right, bottom-left,
    bottom-right in the frame of the spine at that vertebra (across and down the column,
    from the neighbours' centres, so tilts of any size are judged right).
``level_shift``
    a pair of corners is missing or extra, so every later end plate sits one level off:
    from some vertebra down, each "vertebra" is thinner than the gap after it (a disc is
    read as a vertebra and a vertebra as a disc).
``misplaced_corner``
    a corner lies far from where its vertebra's other corners and its neighbours'
    shapes put it: the vertebra's four corners are aligned (rotation, scale, shift) with
    those of each neighbour within two levels, and the corner's distance from the best
    alignment is large.

A fix is *certain* when it only reorders the given points (vertebrae out of order,
swapped corners) and the reordered spine passes the checks that decide it (evenly
spaced vertebrae; a reordered vertebra with no other fault and the shape of a
neighbour); a certain fix restores the corners exactly. Misplaced, duplicated, missing and outside points
have no certain fix; a *suggested* position is given for a misplaced corner.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..trimap import N_LANDMARKS, N_VERTEBRAE, check_landmarks

CORNERS = ("TL", "TR", "BL", "BR")
#: vertebra names, top to bottom
VERTEBRA_NAMES = tuple(f"T{i}" for i in range(1, 13)) + tuple(f"L{i}" for i in range(1, 6))
#: every kind of fault, in the order the checks run (the two data-set kinds last)
KINDS = (
    "outside_image",
    "duplicate_vertebra",
    "vertebra_order",
    "top_bottom_swapped",
    "left_right_swapped",
    "level_shift",
    "misplaced_corner",
    "mat_csv_mismatch",
    "angles_mismatch",
)

#: consecutive centres closer than this (in units of the median centre spacing) are
#: one vertebra listed twice
DUPLICATE_DISTANCE = 0.35
#: a vertebra whose thickness is under this fraction of (thickness + gap below) is
#: read as a disc
LEVEL_FLIP = 0.5
#: a corner further than this (units of the local centre spacing) from its best
#: alignment with every neighbour's shape is misplaced
MISPLACED_DISTANCE = 0.14

# corner permutations: new[k] = old[perm[k]]
_TOP_BOTTOM = (2, 3, 0, 1)
_LEFT_RIGHT = (1, 0, 3, 2)


@dataclass(frozen=True)
class Fault:
    """One fault in an image's landmarks.

    Attributes
    ----------
    vertebra : int or None
        1 (top, T1) to 17 (bottom, L5), as the vertebrae are listed in the file.
    corner : str or None
        ``"TL"``, ``"TR"``, ``"BL"``, ``"BR"``, or None for a whole vertebra.
    kind : str
        One of :data:`KINDS`.
    reason : str
        One line, in words.
    fix : bool
        Whether a certain fix exists.
    fixed : (68, 2) ndarray or None
        With a certain fix: the landmarks after it (and after every certain fix found
        before it).
    suggested : (68, 2) ndarray or None
        Without a certain fix, a likely correction when there is one (a misplaced
        corner moved to where its neighbours put it).
    """

    vertebra: int | None
    corner: str | None
    kind: str
    reason: str
    fix: bool = False
    fixed: np.ndarray | None = field(default=None, repr=False, compare=False)
    suggested: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict:
        """The fault as the ``--json`` report writes it (no landmark arrays)."""
        return {
            "vertebra": self.vertebra,
            "corner": self.corner,
            "kind": self.kind,
            "reason": self.reason,
            "fix": self.fix,
        }


def vertebra_label(index: int) -> str:
    """``"5 (T5)"`` for the vertebra at 0-based `index`."""
    return f"{index + 1} ({VERTEBRA_NAMES[index]})"


def find_faults(
    landmarks_xy: np.ndarray, image_shape: tuple[int, int], *, source=None
) -> list[Fault]:
    """Find the faults of one image's landmarks.

    Parameters
    ----------
    landmarks_xy : (68, 2) array_like
        ``(x, y)`` pixels as the file stores them.
    image_shape : (rows, cols)
        The image's size, for the points outside it.
    source : path-like, optional
        File named in errors.

    Returns
    -------
    list of Fault
        In the order the checks run; empty for clean landmarks.

    Raises
    ------
    SpineSegError
        When the landmarks are not 68 finite ``(x, y)`` pairs.
    """
    return _Checker(check_landmarks(landmarks_xy, source), image_shape).run()


def apply_fixes(landmarks_xy: np.ndarray, faults: list[Fault]) -> np.ndarray:
    """The landmarks with every certain fix of `faults` applied (a copy).

    Each certain fault's ``fixed`` already holds the fixes before it, so the last one
    is the answer; without any, the landmarks unchanged.
    """
    fixed = [f.fixed for f in faults if f.fix and f.fixed is not None]
    return np.array(fixed[-1] if fixed else landmarks_xy, dtype=np.float64)


# --------------------------------------------------------------------------- geometry


def robust_centres(groups: np.ndarray) -> np.ndarray:
    """Per vertebra the coordinate-wise median of its 4 corners: one stray corner moves
    it little, and the order the corners are listed in does not matter."""
    return np.median(groups, axis=1)


def _longest_increasing(values: np.ndarray) -> list[int]:
    """Indices of a longest strictly increasing subsequence of `values`."""
    n = len(values)
    length, prev = [1] * n, [-1] * n
    for i in range(n):
        for j in range(i):
            if values[j] < values[i] and length[j] + 1 > length[i]:
                length[i], prev[i] = length[j] + 1, j
    best = int(np.argmax(length))
    run = []
    while best >= 0:
        run.append(best)
        best = prev[best]
    return run[::-1]


def _frames(centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors across (to the right) and down the column at each vertebra."""
    down = np.gradient(centres, axis=0)
    norm = np.hypot(down[:, 0], down[:, 1])
    down = down / np.where(norm > 0, norm, 1.0)[:, None]
    down[norm == 0] = (0.0, 1.0)
    across = np.stack([down[:, 1], -down[:, 0]], axis=1)
    return across, down


def _local_order(corners: np.ndarray, across: np.ndarray, down: np.ndarray) -> tuple[int, ...]:
    """The corner permutation that puts 4 corners in TL, TR, BL, BR order in a frame."""
    rel = corners - corners.mean(axis=0)
    u, v = rel @ across, rel @ down
    by_u = np.argsort(u, kind="stable")
    left = by_u[:2][np.argsort(v[by_u[:2]], kind="stable")]
    right = by_u[2:][np.argsort(v[by_u[2:]], kind="stable")]
    return (int(left[0]), int(right[0]), int(left[1]), int(right[1]))


def _align_residuals(target: np.ndarray, template: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Align `template` (4 corners) to `target` by rotation, scale and shift (least
    squares, no reflection); return the aligned template and each corner's distance."""
    a = target[:, 0] + 1j * target[:, 1]
    b = template[:, 0] + 1j * template[:, 1]
    a0, b0 = a - a.mean(), b - b.mean()
    denom = np.vdot(b0, b0).real
    scale = np.vdot(b0, a0) / denom if denom > 0 else 0.0
    fitted = scale * b0 + a.mean()
    return np.stack([fitted.real, fitted.imag], axis=1), np.abs(a - fitted)


class _Checker:
    """The checks of :func:`find_faults` on one landmark array, run in order."""

    def __init__(self, landmarks: np.ndarray, image_shape: tuple[int, int]):
        self.original = landmarks
        self.shape = (int(image_shape[0]), int(image_shape[1]))
        self.work = landmarks.reshape(N_VERTEBRAE, 4, 2).copy()
        #: file index of the vertebra at each working position
        self.order = np.arange(N_VERTEBRAE)
        self.faults: list[Fault] = []
        self.flagged: set[int] = set()  # file indices with a fault already
        self.duplicates: set[int] = set()
        self.unit = 1.0

    def run(self) -> list[Fault]:
        centres = robust_centres(self.work)
        steps = np.hypot(*np.diff(centres[np.argsort(centres[:, 1], kind="stable")], axis=0).T)
        self.unit = max(float(np.median(steps)), 1e-6)
        self._outside()
        self._duplicates()
        self._order()
        shifted_from = self._level_shift()
        self._corner_order(shifted_from)
        self._misplaced(shifted_from)
        return self.faults

    # ------------------------------------------------------------------ helpers

    def _add(self, index: int | None, corner: int | None, kind: str, reason: str, **kw) -> None:
        vertebra = None if index is None else int(index) + 1
        name = None if corner is None else CORNERS[corner]
        self.faults.append(Fault(vertebra, name, kind, reason, **kw))
        if index is not None:
            self.flagged.add(int(index))

    def _flat(self) -> np.ndarray:
        return self.work.reshape(N_LANDMARKS, 2).copy()

    # ------------------------------------------------------------------ checks

    def _outside(self) -> None:
        rows, cols = self.shape
        for i, corners in enumerate(self.work):
            for k, (x, y) in enumerate(corners):
                if 0 <= x <= cols and 0 <= y <= rows:
                    continue
                self._add(
                    i,
                    k,
                    "outside_image",
                    f"corner ({x:.1f}, {y:.1f}) lies outside the {cols} x {rows} image "
                    f"(normalised {x / cols:.3f}, {y / rows:.3f})",
                )

    def _duplicates(self) -> None:
        centres = robust_centres(self.work)
        by_y = np.argsort(centres[:, 1], kind="stable")
        for a, b in zip(by_y[:-1], by_y[1:], strict=True):
            gap = float(np.hypot(*(centres[b] - centres[a])))
            if gap >= DUPLICATE_DISTANCE * self.unit:
                continue
            later, earlier = max(a, b), min(a, b)
            self.duplicates.add(int(later))
            self._add(
                later,
                None,
                "duplicate_vertebra",
                f"lies on vertebra {vertebra_label(earlier)}: centres {gap:.1f} px apart, "
                f"{gap / self.unit:.2f} of the usual spacing",
            )

    def _order(self) -> None:
        centres = robust_centres(self.work)
        keep = np.array([i for i in range(N_VERTEBRAE) if i not in self.duplicates])
        in_order = set(keep[_longest_increasing(centres[keep, 1])].tolist())
        out = [int(i) for i in keep if i not in in_order]
        if not out:
            return
        order = np.argsort(centres[:, 1], kind="stable")
        reordered = self.work[order]
        certain = not self.duplicates and self._regular(reordered)
        if certain:
            self.work, self.order = reordered, order
        fixed = self._flat() if certain else None
        for i in out:
            rank = int(np.flatnonzero(order == i)[0])
            if i == 0 and rank == N_VERTEBRAE - 1:
                reason = "the last vertebra's corners are listed first (drawn at the top)"
            else:
                reason = f"listed as vertebra {i + 1} but lies at level {rank + 1} from the top"
            if not certain:
                reason += "; the order cannot be restored with certainty"
            self._add(i, None, "vertebra_order", reason, fix=certain, fixed=fixed)

    def _regular(self, groups: np.ndarray) -> bool:
        """Whether vertebrae in this order are evenly spaced and alike in size."""
        centres = robust_centres(groups)
        steps = np.hypot(*np.diff(centres, axis=0).T) / self.unit
        sizes = np.sqrt(((groups - groups.mean(axis=1, keepdims=True)) ** 2).sum(-1).mean(-1))
        ratio = sizes / np.median(sizes)
        return bool(
            steps.min() > 0.5 and steps.max() < 1.8 and ratio.min() > 0.5 and ratio.max() < 2
        )

    def _corner_order(self, shifted_from: int) -> None:
        across, down = _frames(robust_centres(self.work))
        for pos, corners in enumerate(self.work[:shifted_from]):
            index = int(self.order[pos])
            if index in self.duplicates:
                continue
            perm = _local_order(corners, across[pos], down[pos])
            if perm == (0, 1, 2, 3):
                continue
            kind, corner, what = _describe_swap(perm)
            candidate = corners[list(perm)]
            certain = (
                index not in self.flagged
                and self._swap_is_clear(candidate, across[pos], down[pos])
                and self._fits_neighbours(pos, candidate, shifted_from, (across, down))
            )
            if certain:
                self.work[pos] = candidate
            reason = what + ("" if certain else "; the right order is not clear")
            self._add(
                index, corner, kind, reason, fix=certain, fixed=self._flat() if certain else None
            )

    def _swap_is_clear(self, corners: np.ndarray, across: np.ndarray, down: np.ndarray) -> bool:
        """Whether reordered corners are clearly left/right and top/bottom of each other."""
        rel = corners - corners.mean(axis=0)
        u, v = rel @ across, rel @ down
        width = (u[1] + u[3] - u[0] - u[2]) / 2
        height = (v[2] + v[3] - v[0] - v[1]) / 2
        return bool(
            min(u[1], u[3]) - max(u[0], u[2]) > 0.3 * width
            and min(v[2] - v[0], v[3] - v[1]) > 0.3 * height
            and height > 0.25 * self.unit
        )

    def _fits_neighbours(self, pos: int, corners: np.ndarray, end: int, frames) -> bool:
        """Whether reordered corners have the shape of a neighbour in order (within two
        levels), as closely as a corner must to count as placed right."""
        centres = robust_centres(self.work)
        steps = np.hypot(*np.diff(centres, axis=0).T)
        local = np.median(steps[max(0, pos - 2) : pos + 2])
        across, down = frames
        for other in (pos - 1, pos + 1, pos - 2, pos + 2):
            if not 0 <= other < end or int(self.order[other]) in self.flagged:
                continue
            if _local_order(self.work[other], across[other], down[other]) != (0, 1, 2, 3):
                continue
            _, dist = _align_residuals(corners, self.work[other])
            if dist.max() <= MISPLACED_DISTANCE * local:
                return True
        return False

    def _level_shift(self) -> int:
        """Report a run of disc-like vertebrae to the end; return where it starts (or 17).

        Thickness and gaps are measured between the two upper and the two lower corners
        along the column, whatever order the corners are listed in, so that a swapped
        vertebra is not taken for a level shift.
        """
        _, down = _frames(robust_centres(self.work))
        upper, lower = np.empty(N_VERTEBRAE), np.empty(N_VERTEBRAE)
        for pos, corners in enumerate(self.work):
            v = np.sort(corners @ down[pos])
            upper[pos], lower[pos] = v[:2].mean(), v[2:].mean()
        thick = lower - upper
        along = down[:-1] + down[1:]
        along /= np.hypot(along[:, 0], along[:, 1])[:, None]
        gap = np.empty(N_VERTEBRAE - 1)
        for pos in range(N_VERTEBRAE - 1):
            a = np.sort(self.work[pos] @ along[pos])
            b = np.sort(self.work[pos + 1] @ along[pos])
            gap[pos] = b[:2].mean() - a[2:].mean()
        with np.errstate(divide="ignore", invalid="ignore"):
            share = thick[:-1] / (thick[:-1] + gap)
        flipped = share < LEVEL_FLIP
        for start in range(N_VERTEBRAE - 1):
            run = flipped[start:]
            if not flipped[start]:
                continue
            if (len(run) >= 2 and run.mean() >= 0.8) or share[start] < 0.7 * LEVEL_FLIP:
                break
        else:
            return N_VERTEBRAE
        index = int(self.order[start])
        self._add(
            index,
            None,
            "level_shift",
            f"from vertebra {vertebra_label(start)} down, {int(run.sum())} of {len(run)} "
            "'vertebrae' are thinner than the gap below them: a pair of corners is missing "
            "or extra, so every later end plate sits one level off",
        )
        return start

    def _misplaced(self, shifted_from: int) -> None:
        centres = robust_centres(self.work)
        steps = np.hypot(*np.diff(centres, axis=0).T)
        usable = [pos for pos in range(shifted_from) if int(self.order[pos]) not in self.flagged]
        for pos in usable:
            local = np.median(steps[max(0, pos - 2) : pos + 2])
            best = None
            for other in (pos - 1, pos + 1, pos - 2, pos + 2):
                if other not in usable:
                    continue
                fitted, dist = _align_residuals(self.work[pos], self.work[other])
                if best is None or dist.max() < best[1].max():
                    best = (fitted, dist)
            if best is None or best[1].max() <= MISPLACED_DISTANCE * local:
                continue
            fitted, dist = best
            k = int(np.argmax(dist))
            suggested = self.work.copy()
            suggested[pos, k] = fitted[k]
            self._add(
                int(self.order[pos]),
                k,
                "misplaced_corner",
                f"lies {dist[k]:.1f} px ({dist[k] / local:.2f} of the vertebra spacing) from "
                "where the vertebra's other corners and its neighbours' shapes put it",
                suggested=suggested.reshape(N_LANDMARKS, 2),
            )


def _describe_swap(perm: tuple[int, ...]) -> tuple[str, int | None, str]:
    """Kind, corner and words for a corner permutation found by :func:`_local_order`."""
    if perm == _TOP_BOTTOM:
        return "top_bottom_swapped", None, "top and bottom corners are swapped"
    if perm == _LEFT_RIGHT:
        return "left_right_swapped", None, "left and right corners are swapped"
    if perm == (3, 2, 1, 0):
        return "top_bottom_swapped", None, "corners are listed upside down (turned 180 degrees)"
    moved = [k for k in range(4) if perm[k] != k]
    names = ", ".join(CORNERS[k] for k in moved)
    if len(moved) == 2 and moved[0] % 2 == moved[1] % 2:
        return "top_bottom_swapped", moved[0], f"corners {names} are swapped (top and bottom)"
    if len(moved) == 2 and moved[0] // 2 == moved[1] // 2:
        return "left_right_swapped", moved[0], f"corners {names} are swapped (left and right)"
    return "top_bottom_swapped", moved[0], f"corners {names} are out of order"
