"""Geometry on spine masks and landmarks: Cobb angles, centre line, gaps, metrics."""
