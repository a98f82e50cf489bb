"""Scaling the reproduction out: the tables as a plan of runs, trained in parallel.

* :mod:`.plan` — every run the requested tables need, with its dependencies and a device-hour estimate
  (``make plan``);
* :mod:`.execute` — a pool of long-lived worker processes (one per slot: a CPU share or a GPU) that trains the
  plan's unfinished runs dependencies first, and ``submit`` for SLURM through ``submitit``
  (``python -m lib.scale.execute``);
* :mod:`.bench` / :mod:`.bench_pipeline` — the throughput table the plan estimates with, measured on the machine
  (``make bench``), and the data-path comparison.

Nothing here decides what a run computes: a run trained by the pool is the run a notebook would train
(:func:`lib.core.runs.run_stage`), found again by its identity.
"""
