"""Keras 3 U-Nets: builders, input pipeline, training, prediction, model files.

The only part of the package that imports Keras or TensorFlow, and only inside the
functions that need it.
"""
