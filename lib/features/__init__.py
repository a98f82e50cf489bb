"""Features in and out: a finished run's test features as a file, and any toolbox's features scored here.

* :mod:`.format` — the feature file (``.npz`` of plain arrays, loaded without pickle): :class:`FeatureFile`, its
  keys, dtypes and shapes, and the checks that name the file and key of what is wrong;
* :mod:`.export` — :func:`export_run`: a run's split through the run's own query and gallery paths;
* :mod:`.evaluate` — :func:`evaluate_features`: the file's distance and protocol, scored as the runs' tests are.

Command line (``python -m lib.features``, :mod:`.__main__`)::

    python -m lib.features export --run RUN --split K --out F.npz
    python -m lib.features evaluate F.npz [--json metrics.json]

docs/using_runs.md ("Exporting features; evaluating another toolbox's") describes the format for writing one.
"""

from .evaluate import PROTOCOLS, check_protocol, evaluate_features, summary_line
from .export import export_run, find_stage
from .format import FORMAT, OPTIONAL, REQUIRED, FeatureFile, FeatureFileError

__all__ = ["FORMAT", "REQUIRED", "OPTIONAL", "FeatureFile", "FeatureFileError", "export_run", "find_stage",
           "PROTOCOLS", "check_protocol", "evaluate_features", "summary_line"]
