"""Which colour of a hand-painted mask is which trimap class, and how to change it.

By default red ``(255, 0, 0)`` is spine (1), green ``(0, 255, 0)`` background (2), blue
``(0, 0, 255)`` border (3) and black ``(0, 0, 0)`` (unpainted) background
(:data:`~napari_spine_seg.data.masks.DEFAULT_COLOUR_MAP`); each pixel takes the class
of its nearest colour. Another mapping is given by a JSON file:

1. ``colours.json`` in the mask's folder (masks painted alike share a folder), else
2. the file named by the environment variable ``SPINE_SEG_COLOURS``, else
3. the default.

The JSON names each class and gives one colour or a list of colours, each as
``[r, g, b]`` (0–255) or ``"#rrggbb"``::

    {"spine": "#ffffff", "background": ["#000000", [0, 128, 0]], "border": [255, 255, 0]}
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..data.masks import DEFAULT_COLOUR_MAP
from ..errors import SpineSegError
from ..trimap import BACKGROUND, BORDER, SPINE

#: file name of the per-folder colour mapping
SIDECAR_NAME = "colours.json"
#: environment variable naming a colour-mapping JSON file
ENV_VAR = "SPINE_SEG_COLOURS"

_CLASSES = {"spine": SPINE, "background": BACKGROUND, "border": BORDER}


def _parse_colour(value, source: Path) -> tuple[int, int, int]:
    if isinstance(value, str):
        text = value.strip().lstrip("#")
        if len(text) == 6:
            try:
                return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))
            except ValueError:
                pass
    elif (
        isinstance(value, list | tuple)
        and len(value) == 3
        and all(isinstance(v, int) and 0 <= v <= 255 for v in value)
    ):
        return (int(value[0]), int(value[1]), int(value[2]))
    raise SpineSegError(source, f"colour {value!r} is neither [r, g, b] (0-255) nor '#rrggbb'")


def parse_colour_map(text: str, source: str | os.PathLike) -> dict[tuple[int, int, int], int]:
    """``{(r, g, b): trimap value}`` from the JSON text of a colour-mapping file.

    Parameters
    ----------
    text : str
        JSON object naming ``spine``, ``background`` and/or ``border``.
    source : path-like
        The file the text came from, named in errors.

    Raises
    ------
    SpineSegError
        When the JSON is malformed, names an unknown class or an invalid colour.

    Examples
    --------
    >>> parse_colour_map('{"spine": "#ffffff", "background": [[0, 0, 0], [0, 128, 0]]}', "c.json")
    {(255, 255, 255): 1, (0, 0, 0): 2, (0, 128, 0): 2}
    """
    source = Path(source)
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpineSegError(source, f"is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(spec, dict) or not spec:
        raise SpineSegError(source, "must be a JSON object naming spine, background and/or border")
    mapping: dict[tuple[int, int, int], int] = {}
    for name, colours in spec.items():
        if name not in _CLASSES:
            raise SpineSegError(source, f"unknown class {name!r} (use spine, background, border)")
        if isinstance(colours, str) or (
            isinstance(colours, list) and colours and isinstance(colours[0], int)
        ):
            colours = [colours]
        if not isinstance(colours, list) or not colours:
            raise SpineSegError(source, f"class {name!r} needs a colour or a list of colours")
        for colour in colours:
            mapping[_parse_colour(colour, source)] = _CLASSES[name]
    return mapping


def colour_map_for(
    mask_path: str | os.PathLike,
) -> tuple[dict[tuple[int, int, int], int], Path | None]:
    """The colour mapping that applies to `mask_path`, and the file it came from.

    Returns
    -------
    dict
        ``{(r, g, b): trimap value}``.
    pathlib.Path or None
        The JSON file read, or None for the default mapping.

    Raises
    ------
    SpineSegError
        When the JSON file named by ``SPINE_SEG_COLOURS`` is missing, or a mapping file
        cannot be read or parsed.
    """
    sidecar = Path(mask_path).parent / SIDECAR_NAME
    env = os.environ.get(ENV_VAR, "").strip()
    source = sidecar if sidecar.is_file() else (Path(env) if env else None)
    if source is None:
        return dict(DEFAULT_COLOUR_MAP), None
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        where = f" (named by {ENV_VAR})" if source != sidecar else ""
        raise SpineSegError(
            source, f"colour mapping cannot be read{where}: {exc.strerror or exc}"
        ) from None
    return parse_colour_map(text, source), source
