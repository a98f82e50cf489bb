"""FTWA (ICIP): a two-stream ResNet-50 with a feature-transformation module (RAFT) and self-weighted attention (SWA).

* :mod:`.config` — the typed configuration (``configs/ftwa/*.yaml``);
* :mod:`.losses` — the loss terms of FTWA Eq. (8) (``swa_cls``, ``swa_tri``, ``raft``), their inputs and settings;
* :mod:`.steps` — the training step (FTWA Eq. (8) over the HR and LR images of a batch);
* :mod:`.stages` — one stage, ``train``;
* :mod:`.matching` — how an LR query is matched to the HR gallery (the "weighted distance metric").

The network is :class:`lib.models.ftwa.FTWANet` (with :class:`lib.models.raft.RAFT`), the losses' equations
:mod:`lib.losses.swa`. Output: ``ftwa`` (LR query vs HR gallery).
"""

from __future__ import annotations

from .. import METHODS, Method, MethodsRow, WorkbookTable
from .config import FTWAConfig
from .stages import STAGES, matcher, query_path

__all__ = ["FTWA", "FTWAConfig"]

FTWA = METHODS.register("ftwa", Method(
    name="ftwa", config_class=FTWAConfig, stages=STAGES, outputs={"ftwa": ("train", "lr")},
    paper_config="configs/ftwa/paper.yaml", not_compared=("test.batch_size", "test.match"), query_path=query_path,
    matcher=matcher, headline="ftwa",
    tables=(WorkbookTable("ftwa1", "ftwa_table1", ("11_ftwa",)), WorkbookTable("ftwa2", "ftwa_table2", ("12_ftwa_ablation",))),
    methods_rows=(MethodsRow("FTWA", "ftwa", paper="ftwa", paper_table="table1", paper_row="ftwa"),),
))
