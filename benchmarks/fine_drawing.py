"""Pillow drawing on layers finer than the image, for the test generators' ``--antialias``.

Pillow fills a shape whose corners it has first floored to whole pixels, so a body drawn
at the image's own pixels is not the body its landmarks describe: its end plates are off
by a fraction of a degree (``bench_set_draws.py``: ``drawn_bodies``). A layer ``k``
times finer, averaged down, puts each edge within ``1/k`` of a pixel of where it was
asked for, and covers an edge's pixels in part, as an X-ray's detector does.
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageDraw

#: how many times finer than the image the test generators draw their shapes by
#: default (until 2026-12-01 they drew at the image's own pixels: ``--antialias 1``)
FINENESS = 4


class FineLayers:
    """Pillow's drawing on layers of `fines` times the image's pixels at once.

    Each call takes the image's coordinates (a pixel's centre at its integer index, as
    in the landmarks), so that every layer holds the same shapes from the same draws.
    A fineness of 1 draws exactly as Pillow does on the image itself.
    """

    def __init__(self, height: int, width: int, fines: list[int]):
        self.fines = [int(k) for k in fines]
        self.layers = [Image.new("F", (width * k, height * k), 0.0) for k in self.fines]
        self.draws = [ImageDraw.Draw(layer) for layer in self.layers]

    def _each(self, points):
        for k, draw in zip(self.fines, self.draws, strict=True):
            yield k, draw, [v * k + (k - 1) / 2.0 for v in np.ravel(points)]

    def polygon(self, points, fill):
        for _, draw, xy in self._each(points):
            draw.polygon(xy, fill=fill)

    def ellipse(self, box, fill):
        for _, draw, xy in self._each(box):
            draw.ellipse(xy, fill=fill)

    def chord(self, box, start, end, fill):
        for _, draw, xy in self._each(box):
            draw.chord(xy, start, end, fill=fill)

    def rectangle(self, box, fill):
        for _, draw, xy in self._each(box):
            draw.rectangle(xy, fill=fill)

    def line(self, points, fill, width):
        for k, draw, xy in self._each(points):
            draw.line(xy, fill=fill, width=width * k)

    def images(self) -> list[np.ndarray]:
        """Each layer averaged down to the image's pixels, in the order of `fines`."""
        out = []
        for k, layer in zip(self.fines, self.layers, strict=True):
            a = np.asarray(layer)
            out.append(a if k == 1 else a.reshape(a.shape[0] // k, k, -1, k).mean(axis=(1, 3)))
        return out


def fineness(text: str) -> int:
    """An ``--antialias`` value: a whole number of at least 1 (argparse's `type`)."""
    try:
        k = int(text)
    except ValueError:
        k = 0
    if k < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return k


def add_antialias_option(parser: argparse.ArgumentParser) -> None:
    """A test generator's ``--antialias K`` (default :data:`FINENESS`)."""
    parser.add_argument(
        "--antialias",
        type=fineness,
        default=FINENESS,
        metavar="K",
        help="draw the shapes K times finer and average them down (default %(default)s; 1: "
        "at the image's pixels, corners floored to whole pixels, as before 2026-12-01)",
    )
