"""The training engine of the ``ml`` context: scikit-learn pipelines, the search, metrics; no Studio9 I/O.

``spec`` (what to train; loads nothing heavy) and ``errors`` describe a run; ``training.train``
runs it on a pandas frame and returns the fitted pipeline with its leaderboard, metrics and
feature importance; ``training.predict_frame`` is the one way every caller scores rows. The
modules that do the work (``preprocessing``, ``candidates``, ``search``, ``metrics``,
``training``) load scikit-learn, pandas and numpy; only the ML job and the predict path import
them.
"""
