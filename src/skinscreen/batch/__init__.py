"""Archive-scale runs of ``segment``, ``assess`` and ``evaluate`` on Ray Data (``skinscreen batch``).

Orchestration, not runtime: only :mod:`skinscreen.batch.ray_run` imports Ray (the ``scale``
extra), and nothing in the runtime core imports this package.

- :mod:`~skinscreen.batch.source`: SOURCE (folder, text/CSV list, Parquet table) -> items;
- :mod:`~skinscreen.batch.work`: one photo -> its files (written by the single-process verbs'
  own code) and its completion record; resume checks;
- :mod:`~skinscreen.batch.tables`: completion records -> ``results.parquet`` and ``summary.json``;
- :mod:`~skinscreen.batch.ray_run`: local or cluster Ray, the actor pool, progress.
"""
