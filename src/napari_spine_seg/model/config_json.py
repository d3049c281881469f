"""JSON for the job configs: one way to write and read them.

Used by :class:`~.config.TrainConfig`, :class:`~.predict_config.PredictConfig` and
:class:`~napari_spine_seg.review.retrain.RetrainConfig`.

A config is a frozen dataclass that checks itself when made; :class:`JsonConfig` adds
``to_dict``/``to_json`` (paths as text, tuples as lists) and ``from_dict``/``from_json``,
which refuse a setting the config does not have and check the rest as any config.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from ..errors import SpineSegError


def json_value(value):
    """`value` as JSON values: paths as text, tuples and lists as lists, dicts copied."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    return value


class JsonConfig:
    """A mixin for frozen config dataclasses: their settings to and from JSON.

    ``WHAT`` names the job in errors ("unknown training setting(s): ...").
    """

    WHAT = "job"

    def to_dict(self) -> dict:
        """The settings as JSON values (paths as text, tuples as lists)."""
        return {f.name: json_value(getattr(self, f.name)) for f in fields(self)}

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text; :meth:`from_json` reads it back equal."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict):
        """A config from :meth:`to_dict`'s values (checked, as any config)."""
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise SpineSegError(
                None, f"unknown {cls.WHAT} setting(s): {', '.join(sorted(unknown))}"
            )
        return cls(**data)

    @classmethod
    def from_json(cls, text: str):
        """A config from :meth:`to_json`'s text."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SpineSegError(None, f"{cls.WHAT} settings are not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise SpineSegError(None, f"{cls.WHAT} settings must be a JSON object")
        return cls.from_dict(data)
