"""Table III's companions: restoration quality per down-sampling rate, Fig. 5, and Solo SR against bicubic.

:func:`restoration_report` (the ``restoration`` extra of ``configs/tables/table3.yaml``) takes what :func:`lib.workflow.run_and_tabulate` made for ``table3`` and writes

* ``tables/table3_per_rate.{csv,md}`` — PSNR / SSIM per rate r and row, mean ± std over splits (from the summaries:
  each SR stage measures them when it is evaluated, :mod:`lib.metrics.restoration`);
* ``figures/table3_quality_vs_rate.png`` — PSNR and SSIM against r, one line per row;
* ``figures/fig5.png`` (the first dataset) and ``figures/fig5_<dataset>.png`` — test persons of split 0 at
  r = 2, 3, 4: the LR image at its true size, each row's restoration with its PSNR, the HR original (paper Fig. 5);
* ``tables/table3_solo_vs_bicubic.{csv,md}`` — Solo SR's PSNR gain over bicubic up-sampling per r and dataset.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .specs import TABLE_EXTRAS

__all__ = ["RestorationReport", "quality_by_rate", "solo_vs_bicubic", "restoration_report"]

_RATE_KEY = re.compile(r"^(psnr|ssim)_r(\d+)$")


@dataclass
class RestorationReport:
    """What :func:`restoration_report` made."""

    per_rate: pd.DataFrame
    solo_vs_bicubic: pd.DataFrame
    rate_figure: Any = None
    fig5: Any = None
    files: list[Path] = field(default_factory=list)


def quality_by_rate(summaries: Mapping[tuple[str, str], dict], rows) -> pd.DataFrame:
    """``variant, label, dataset, r, psnr, psnr_std, ssim, ssim_std, num_splits`` for every row with restoration
    numbers (``r`` = ``"all"`` for the overall mean)."""
    recs = []
    for row in rows:
        for (variant, ds), rec in summaries.items():
            agg = rec.get("outputs", {}).get(row.output, {}).get("aggregate", {}) if variant == row.variant else {}
            rates = sorted({int(m.group(2)) for k in agg if (m := _RATE_KEY.match(k))})
            for r in rates + (["all"] if "psnr" in agg else []):
                sfx = "" if r == "all" else f"_r{r}"
                if f"psnr{sfx}" not in agg:
                    continue
                recs.append({"variant": variant, "label": row.label, "dataset": ds, "r": r,
                             "psnr": agg[f"psnr{sfx}"]["mean"], "psnr_std": agg[f"psnr{sfx}"]["std"],
                             "ssim": agg.get(f"ssim{sfx}", {}).get("mean"), "ssim_std": agg.get(f"ssim{sfx}", {}).get("std"),
                             "num_splits": len(agg[f"psnr{sfx}"]["values"])})
    return pd.DataFrame(recs, columns=["variant", "label", "dataset", "r", "psnr", "psnr_std", "ssim", "ssim_std",
                                       "num_splits"])


def solo_vs_bicubic(per_rate: pd.DataFrame, solo: str = "solo_sr", bicubic: str = "bicubic") -> pd.DataFrame:
    """Solo SR's PSNR minus bicubic's per dataset and r (dB), with ``beats`` (gain > 0)."""
    cols = ["dataset", "r", "bicubic_psnr", "solo_sr_psnr", "gain_db", "beats"]
    if per_rate.empty:
        return pd.DataFrame(columns=cols)
    a = per_rate[per_rate.variant == solo].set_index(["dataset", "r"])["psnr"]
    b = per_rate[per_rate.variant == bicubic].set_index(["dataset", "r"])["psnr"]
    both = pd.concat({"bicubic_psnr": b, "solo_sr_psnr": a}, axis=1).dropna()
    both["gain_db"] = both["solo_sr_psnr"] - both["bicubic_psnr"]
    both["beats"] = both["gain_db"] > 0
    return both.reset_index()[cols]


def _per_rate_markdown(frame: pd.DataFrame, space: str) -> str:
    lines = [f"# Table III per down-sampling rate — PSNR (dB) / SSIM ({space}), mean ± std over splits", "",
             "| Dataset | Row | r | PSNR | SSIM |", "|---|---|---|---|---|"]
    for r in frame.itertuples():
        ssim = "—" if r.ssim is None or pd.isna(r.ssim) else f"{r.ssim:.3f} ± {r.ssim_std:.3f}"
        lines.append(f"| {r.dataset} | {r.label} | {r.r} | {r.psnr:.2f} ± {r.psnr_std:.2f} | {ssim} |")
    return "\n".join(lines) + "\n"


def _fig5(exp, rows, ds_name: str, num_examples: int, space: str):
    """Fig. 5 for one dataset (split 0 or the first split run): each row's G from its run."""
    from ..metrics.restoration import restored_examples
    from ..methods import METHODS
    from ..viz import restoration_grid

    method = METHODS.get(exp.method)
    split = min(k for (_, d, k) in exp.runs if d == ds_name)
    modules, cfg = {}, None
    for row in rows:
        runs = exp.runs.get((row.variant, ds_name, split))
        stage = method.outputs[row.output][0]
        if runs is None or stage not in runs:
            continue
        if "sr" in runs[stage].modules:  # every Table III row's stage has its G (bicubic: the identity module)
            cfg = exp.configs[row.variant]
            modules[row.label] = runs[stage].modules["sr"]
    if not modules or cfg is None:
        return None
    s = exp.datasets[ds_name].split(split)
    images = [im for im in s.query if im.has_hr_original] or [im for im in s.gallery if im.has_hr_original]
    examples = restored_examples(modules, images, size=cfg.data.size, precision=cfg.runtime.precision_for(),
                                 rates=tuple(cfg.data.rates), num_persons=num_examples, seed=cfg.seed, space=space)
    return restoration_grid(examples, names=list(modules), space=space)


@TABLE_EXTRAS.register("restoration")
def restoration_report(params: Mapping[str, Any], report, num_examples: int | None = None) -> RestorationReport:
    """Per-rate table and plot, Fig. 5 and the Solo SR vs bicubic check for a Table III report (see the module);
    ``num_examples`` (default the notebook's ``NUM_EXAMPLES``, else 2) persons in Fig. 5."""
    from ..utils.io import atomic_write_text
    from ..viz import quality_vs_rate, save_figure
    from .tables import frame_markdown

    out = report.out
    if out is None:
        raise ValueError("report.out: the profile's output folder is not set (lib.workflow.run_and_tabulate sets it)")
    num_examples = int(params.get("NUM_EXAMPLES", 2) if num_examples is None else num_examples)
    exp = report.experiment
    space = next((c.test.restoration_space for c in exp.configs.values()), "y")
    per_rate = quality_by_rate(exp.summaries, report.rows)
    solo = solo_vs_bicubic(per_rate)
    files = [atomic_write_text(out / "tables" / "table3_per_rate.csv", per_rate.to_csv(index=False)),
             atomic_write_text(out / "tables" / "table3_per_rate.md", _per_rate_markdown(per_rate, space))]
    gains = solo.set_index(["dataset", "r"])[["bicubic_psnr", "solo_sr_psnr", "gain_db"]] if not solo.empty else solo
    files += [atomic_write_text(out / "tables" / "table3_solo_vs_bicubic.csv", solo.to_csv(index=False)),
              atomic_write_text(out / "tables" / "table3_solo_vs_bicubic.md",
                                "# Solo SR vs bicubic: PSNR (dB) per dataset and r\n\n"
                                + (frame_markdown(gains.astype(float)) if not solo.empty else "(no result)") + "\n")]
    rate_fig = None
    by_r = per_rate[per_rate.r != "all"]
    if not by_r.empty:
        frame = by_r.assign(variant=by_r.label, r=by_r.r.astype(int))
        rate_fig = quality_vs_rate(frame)
        files.append(save_figure(rate_fig, out / "figures" / "table3_quality_vs_rate.png"))
    fig5 = None
    for i, ds_name in enumerate(exp.datasets):
        fig = _fig5(exp, report.rows, ds_name, num_examples, space)
        if fig is None:
            continue
        files.append(save_figure(fig, out / "figures" / f"fig5_{ds_name}.png"))
        if fig5 is None:
            fig5 = fig
            files.append(save_figure(fig, out / "figures" / "fig5.png"))
    return RestorationReport(per_rate, solo, rate_fig, fig5, files)
