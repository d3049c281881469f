"""Segment the spine in posteroanterior X-rays with a U-Net; review and correct it in napari.

Importing this package is cheap: it imports neither napari, Qt, Keras nor TensorFlow.
"""

__version__ = "0.1.0"

from .errors import SpineSegError

__all__ = ["SpineSegError", "__version__"]
