"""Monitoring of served traffic, read from the serving store (:mod:`mlwright.store`).

- :mod:`~mlwright.monitor.drift`: served values counted into a reference's bins, and the drift
  tests and distances computed from the counts (thresholds: :mod:`~mlwright.monitor.settings`);
- :mod:`~mlwright.monitor.counts`: the binning function the store's writer is given
  (:func:`~mlwright.monitor.counts.count_batch`), and drift over any window of stored counts;
- :mod:`~mlwright.monitor.performance`: live performance from feedback;
- :mod:`~mlwright.monitor.overview`: everything a store has served, over a window (what
  `mlwright monitor` prints and its report shows);
- :mod:`~mlwright.monitor.gauges`: the drift and performance gauges of a server's ``/metrics``.
"""
