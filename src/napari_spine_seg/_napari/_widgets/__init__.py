"""The dock widgets: train or load a model, predict, inspect gaps, review.

One module per widget; each calls the core (``model/``, ``spine/``, ``review/``) and
holds no logic of its own. Long work runs in napari ``thread_worker`` threads
(:mod:`._workers`), so the viewer never waits on a model.
"""
