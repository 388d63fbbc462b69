"""Training: preprocessing, model families, validation splits, search and the run itself.

The Python API's training function is :func:`mlwright.api.train`, which the top-level package
names ``mlwright.train``: ``mw.train(df, target=...)``. Its submodules are imported as usual
(``from mlwright.train.search import run_search``); see ``mlwright/__init__.py`` for how the
two share the name.
"""
