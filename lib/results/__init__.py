"""Results: per-(method, variant, dataset) summaries of runs, and paper tables built from per-table specs.

* :mod:`.summaries` — ``outputs/<profile>/results/<method>/<dataset>/<variant>.json``: mean ± std over splits of
  every output of a variant, with the data, seed, configuration and its differences from the paper;
* :mod:`.specs` — table specs (``configs/tables/<table>.yaml``): the paper table, the method, its variants (a
  variant = the configuration plus a few overrides) and which output of which variant fills which row;
* :mod:`.tables` — one builder for every table: paper rows from the registry (:mod:`lib.paper_numbers`), ours from the
  summaries, Δ, and above the table the protocol and each row's differences from the paper row it reproduces;
* :mod:`.effects` — each effect between two rows with its 95 % interval, from the per-query records of the runs the
  summaries name (:mod:`lib.metrics.intervals`).
"""

from .specs import TableSpec, load_table_spec, table_names
from .summaries import load_summaries, summary_path, write_summary
from .tables import build_table, write_table

__all__ = ["TableSpec", "load_table_spec", "table_names", "load_summaries", "summary_path", "write_summary",
           "build_table", "write_table"]
