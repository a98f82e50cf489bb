"""PS-HRNet (IEEE TIP): VDSR-CA + HRNet-ReID, trained as a pseudo-siamese pair (HR teacher, LR student).

* :mod:`.config` — the typed configuration (``configs/pshrnet/*.yaml``);
* :mod:`.losses` — the loss terms ``ce``, ``triplet``, ``sr``, ``ps`` of L_TOTAL (PS-HRNet Eq. (12)), their inputs and
  settings;
* :mod:`.steps` — the training steps (phase 1 / baseline: L_ID; phase 2: L_TOTAL, PS-HRNet Eq. (12));
* :mod:`.stages` — the stage graph phase 1 → phase 2, the bicubic ID baseline, and Solo SR (G with L_SR only).

Outputs (what tables show): ``pshrnet`` (the student, LR query vs HR gallery), ``teacher_lr`` (the phase-1 model
on LR queries, no SR), ``teacher_hr`` (on HR queries, where they exist), ``baseline`` (bicubic + ID), ``solo_sr``
(the teacher on Solo SR's restorations). Outputs of stages with an SR module carry PSNR / SSIM beside Rank-1.
"""

from __future__ import annotations

from .. import METHODS, Method, MethodsRow, WorkbookTable
from .config import PSHRNetConfig
from .stages import STAGES, matcher, query_path

__all__ = ["PSHRNET", "PSHRNetConfig"]

#: PS-HRNet's tables in the workbook: ``TABLES`` name, table spec (configs/tables/), the notebooks that make it.
TABLES = (
    WorkbookTable("1", "table1", ("02_phase1_hr_reid", "03_phase2_pseudo_siamese", "04_table1"),
                  plan_notebook="03_phase2_pseudo_siamese",  # notebook 03 trains; 04 only tabulates
                  extra_outputs=("teacher_lr", "teacher_hr"), switches={"RUN_BASELINE": "baseline"}),
    WorkbookTable("2", "table2", ("05_ablation_losses",)),
    WorkbookTable("3", "table3", ("08_restoration_quality",)),
    WorkbookTable("4", "table4", ("07_ablation_sr_modules",)),
    WorkbookTable("5", "table5", ("09_ablation_pooling",)),
    WorkbookTable("6", "table6", ("10_ablation_heads",)),
    WorkbookTable("7", "table7", ("06_ablation_ps_components",)),
)

PSHRNET = METHODS.register("pshrnet", Method(
    name="pshrnet", config_class=PSHRNetConfig, stages=STAGES,
    outputs={"pshrnet": ("phase2", "lr"), "teacher_lr": ("phase1", "lr"), "teacher_hr": ("phase1", "hr"),
             "baseline": ("baseline", "lr"), "solo_sr": ("solo_sr", "lr")},
    paper_config="configs/pshrnet/paper.yaml",
    not_compared=("test.batch_size", "baseline", "test.restoration_space"),  # the paper has no baseline stage
    query_path=query_path, matcher=matcher,
    headline="pshrnet", sweep_outputs=("default/pshrnet", "default/baseline", "default/teacher_lr"),
    tables=TABLES,
    methods_rows=(MethodsRow("PS-HRNet", "pshrnet", paper="ps_hrnet", paper_table="table1", paper_row="ps_hrnet"),
                  MethodsRow("Bicubic + ID baseline", "baseline")),
    notebook_params={"RUN_BASELINE": "bool"},  # notebook 03: also train the bicubic + ID baseline
))
