"""The review queue: which image is under review, moving through the queue, its order.

A mixin of :class:`~.session.ReviewSession`, which holds the attributes it uses
(``keys``, ``index``, ``order``, ``priorities``, the samples by key, the statuses and
the lock) and saves the state (``save_state``) after every move.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..data.dataset import Sample
from ..errors import SpineSegError
from .priority import Priority, worst_first
from .state import FILE_ORDER, ORDERS, UNREVIEWED, WORST_FIRST


class ReviewQueue:
    """Moving through a review's queue (see :class:`~.session.ReviewSession`)."""

    def why(self, key: str | None = None) -> str | None:
        """Why image `key` (default the current one) ranks where it does, or None in file
        order or when it was not ranked."""
        key = self.current_key if key is None else self._check(key)
        priority = self.priorities.get(key)
        if self.order != WORST_FIRST or priority is None:
            return None
        return f"ranked {self.keys.index(key) + 1} of {len(self.keys)}: {priority.describe()}"

    # -- the queue ------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def current_key(self) -> str:
        """Key of the image under review."""
        return self.keys[self.index]

    @property
    def current(self) -> Sample:
        """The sample under review."""
        return self._samples[self.current_key]

    def sample(self, key: str) -> Sample:
        """The sample known as `key`."""
        return self._samples[self._check(key)]

    def _check(self, key: str) -> str:
        if key not in self._samples:
            raise SpineSegError(self.dataset.root, f"has no image {key!r}")
        return key

    def go_to(self, where: int | str) -> str:
        """Make image `where` (a queue position or a key) the current one; return its key."""
        if isinstance(where, str):
            index = self.keys.index(self._check(where))
        else:
            index = int(where)
            if not 0 <= index < len(self.keys):
                raise SpineSegError(None, f"no image at position {index + 1} of {len(self.keys)}")
        with self._mutex:
            if index != self.index:
                before, self.index = self.index, index
                try:
                    self.save_state()
                except SpineSegError:
                    self.index = before  # not moved: the state on disk says so too
                    raise
            return self.current_key

    def next(self) -> str:
        """Move to the next image (stays on the last); return its key."""
        return self.go_to(min(self.index + 1, len(self.keys) - 1))

    def previous(self) -> str:
        """Move to the previous image (stays on the first); return its key."""
        return self.go_to(max(self.index - 1, 0))

    def next_unreviewed(self) -> str | None:
        """Move to the first unreviewed image after the current one (wrapping round).

        Returns its key, or None (and stays) when every image is reviewed.
        """
        n = len(self.keys)
        for step in range(1, n + 1):
            key = self.keys[(self.index + step) % n]
            if self._status[key] == UNREVIEWED:
                return self.go_to(key)
        return None

    def set_order(self, order: str, priorities: Mapping[str, Priority] | None = None) -> list[str]:
        """Reorder the queue, staying on the current image; return the new queue.

        Parameters
        ----------
        order : {"file", "worst"}
            File order (the dataset's), or worst first (most gaps, then most
            uncertain), which needs `priorities`.
        priorities : mapping of key to Priority, optional
            From :func:`review_priority` of each image's prediction.
        """
        file_keys = list(self._samples)
        if order == FILE_ORDER:
            keys = file_keys
        elif order == WORST_FIRST:
            if priorities is None:
                raise SpineSegError(None, "worst-first order needs each image's predicted gaps")
            keys = worst_first(file_keys, priorities)
        else:
            raise SpineSegError(
                None, f"unknown review order {order!r}; use one of {', '.join(ORDERS)}"
            )
        with self._mutex:
            before = (self.keys, self.order, self.index, self.priorities)
            current = self.current_key
            self.keys, self.order, self.index = keys, order, keys.index(current)
            if priorities is not None:
                self.priorities = dict(priorities)
            try:
                self.save_state()
            except SpineSegError:
                self.keys, self.order, self.index, self.priorities = before
                raise
            return list(self.keys)
