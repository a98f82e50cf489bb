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

from .. import METHODS, Method
from .config import PSHRNetConfig
from .stages import STAGES, build_modules, matcher, query_path

__all__ = ["PSHRNET", "PSHRNetConfig"]

PSHRNET = METHODS.register("pshrnet", Method(
    name="pshrnet", config_class=PSHRNetConfig, stages=STAGES,
    outputs={"pshrnet": ("phase2", "lr"), "teacher_lr": ("phase1", "lr"), "teacher_hr": ("phase1", "hr"),
             "baseline": ("baseline", "lr"), "solo_sr": ("solo_sr", "lr")},
    paper_config="configs/pshrnet/paper.yaml",
    not_compared=("test.batch_size", "baseline", "test.restoration_space"),  # the paper has no baseline stage
    query_path=query_path, build_modules=build_modules, matcher=matcher,
))
