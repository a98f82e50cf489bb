"""Cross-resolution person re-identification workbook.

The notebooks in ``notebooks/`` are thin: every piece of logic lives here and is unit-tested. The layers, from the
bottom up (a layer imports only those below it; docs/design.md has the whole picture):

Sub-packages
------------
``lib.utils``      seeding, atomic file writes, repository paths.
``lib.core``       name registries, typed YAML configuration, run identities and run folders (``runs``,
                   ``tracking``), progress lines.
``lib.data``       dataset readers (original release layouts), the embedded synthetic dataset, MLR synthesis,
                   identity splits, the decoded-image cache, torch datasets (PIL and tensor data paths), samplers.
``lib.models``     PS-HRNet's and the baselines' networks (backbones, SR modules, heads) and FTWA's, one concept a
                   file.
``lib.losses``     the losses of both papers, each citing its paper's equation, and the generic loss composer
                   (a method's terms, their inputs and settings live in its package's ``losses``).
``lib.metrics``    ranking evaluation (CMC / mAP / mINP), the single-shot protocol, features, restoration quality.
``lib.engine``     the generic trainer (one overridable step), precision, checkpoints, DDP, evaluation, runtime.
``lib.methods``    the method contract (``contract``: ``Method``, ``MethodConfig``, the hooks) and the methods by
                   name (``pshrnet``, ``ftwa``), each in its own package: configuration, stages, steps, matching.
``lib.paper_numbers``   the papers' published numbers (one registry file) and the table layouts.
``lib.results``    summaries of finished runs and the paper | ours | Δ tables built from them (and the tables'
                   extras: Table III's restoration report, the SR-signal diagnostic); handed finished
                   experiments, it runs none.
``lib.inference``  trained runs outside the tables: load a run folder, match queries to a gallery.

Modules the notebooks and ``make`` call
---------------------------------------
``lib.workflow`` (parameters → experiments → tables), ``lib.workbook`` (running the notebooks with a profile),
``lib.scale`` (the plan of runs, the parallel pool and SLURM submission, the throughput bench), ``lib.train`` (one
variant from the command line, ``torchrun``), ``lib.mlr`` (the MLR command line), ``lib.rank`` (rank your own
images), ``lib.explorer``, ``lib.robustness``, ``lib.viz`` (figures), ``lib.browser_check``.
"""

__version__ = "0.1.0"
