"""Why G is silent as written: the VDSR-CA signal diagnostic beside Table III (issue #20 §3).

:func:`sr_signal_report` (the ``sr_signal`` extra of ``configs/tables/table3.yaml``) takes what
:func:`lib.workflow.run_and_tabulate` made for ``table3`` and measures, with :mod:`lib.models.sr.diagnostics`, on a
batch of the first dataset's training pairs (split 0, never test images):

* for a fresh G of the table's configuration at each initialisation — ``he`` (the paper's and ours), ``authors``
  (the release's normal(0, √(2/n)) on every conv, the attention's 1×1 ones included) and ``identity``;
* for the trained G of every row that has one (Solo SR, SR+ID, SR+ID+PS), drawn as ``<row> (trained)``;

the signal gain of each gated block, the body's gain, G's residual against its input, and the gradient norm that
reaches G's first convolution for L_SR. It writes ``tables/sr_signal.{csv,md}`` (with the conclusion in words,
computed from the numbers) and ``figures/sr_signal_gain.png`` (gain per block, log scale, a line per G).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .specs import TABLE_EXTRAS

__all__ = ["SignalReport", "training_batch", "sr_signal_report", "conclusion"]


@dataclass
class SignalReport:
    """What :func:`sr_signal_report` made: gains per block (long), the summary per G, the figure, the conclusion."""

    gains: pd.DataFrame
    summary: pd.DataFrame
    conclusion: str
    figure: Any = None
    files: list[Path] = field(default_factory=list)


def training_batch(images, size: tuple[int, int], interpolation: str, rates=(2, 3, 4), num: int = 16):
    """``(x, target)``: the first ``num`` training images with an HR original as G's input (the stored LR image, or
    the HR one down-sampled as the MLR synthesis at the rates in turn, resized with ``interpolation``) and the HR
    original resized bilinearly (the training target), both normalised like the pipeline's tensors."""
    from ..data.mlr_build import downsample, load_rgb
    from ..data.transforms import normalize, resize, to_tensor

    xs, ts = [], []
    usable = [im for im in images if im.has_hr_original][:num]
    if not usable:
        raise ValueError("training_batch: no training image with an HR original (natively LR data only)")
    for i, im in enumerate(usable):
        hr = load_rgb(im.hr_path)
        lr = load_rgb(im.lr_path) if im.lr_path is not None else downsample(hr, rates[i % len(rates)], "bicubic", True)
        xs.append(normalize(to_tensor(resize(lr, size, interpolation))))
        ts.append(normalize(to_tensor(resize(hr, size, "bilinear"))))
    return torch.stack(xs), torch.stack(ts)


def conclusion(summary: pd.DataFrame) -> str:
    """The finding in words, from the numbers (one sentence per G, then which initialisation lets G move)."""
    parts = [f"{r.init}: the body passes {r.body_gain:.2g} of its signal and G's residual is "
             f"{100 * r.residual_ratio:.2g} % of its input (gradient of L_SR: {r.head_grad_norm:.2g} at the first "
             f"convolution, {r.tail_grad_norm:.2g} at the last)" for r in summary.itertuples()]
    fresh = summary[~summary["init"].str.endswith("(trained)")].set_index("init")
    verdict = ""
    if {"he", "identity"} <= set(fresh.index):
        he, ident = fresh.loc["he"], fresh.loc["identity"]
        verdict = (f" At the paper's initialisation the gated body passes {he.body_gain:.2g} of its signal, so G adds "
                   f"{100 * he.residual_ratio:.2g} % to its input; with the gates open (identity) the body passes "
                   f"{ident.body_gain / max(he.body_gain, 1e-30):.2g}× more and the gradient reaching G's last "
                   f"convolution is {ident.tail_grad_norm / max(he.tail_grad_norm, 1e-30):.2g}× larger.")
    return "; ".join(parts) + "." + verdict


def _trained_gs(exp, rows, ds_name: str, split: int) -> dict[str, Any]:
    from ..methods import METHODS
    from ..models.sr.vdsr import VDSR

    method, out = METHODS.get(exp.method), {}
    for row in rows:
        runs = exp.runs.get((row.variant, ds_name, split))
        stage = method.outputs[row.output][0]
        sr = runs[stage].modules.get("sr") if runs is not None and stage in runs else None
        if isinstance(sr, VDSR):  # bicubic has no body to measure
            out[f"{row.label} (trained)"] = sr
    return out


def _markdown(summary: pd.DataFrame, text: str, cfg) -> str:
    lines = [f"# Why G is silent as written: signal through {cfg.sr.name} ({cfg.sr.depth} × {cfg.sr.width}) on "
             "training pairs", "", "| G | body gain | residual / input | ‖∂L_SR/∂W_head‖ | ‖∂L_SR/∂W_tail‖ |",
             "|---|---|---|---|---|"]
    lines += [f"| {r.init} | {r.body_gain:.3g} | {r.residual_ratio:.3g} | {r.head_grad_norm:.3g} | "
              f"{r.tail_grad_norm:.3g} |" for r in summary.itertuples()]
    return "\n".join(lines) + "\n\n" + text + "\n"


@TABLE_EXTRAS.register("sr_signal")
def sr_signal_report(params: Mapping[str, Any], report, num: int = 16) -> SignalReport | None:
    """The diagnostic for a Table III report (see the module); ``None`` when the table's G is not VDSR / VDSR-CA."""
    from ..models import build_sr
    from ..models.sr.diagnostics import SUMMARY, compare_inits, signal_report
    from ..utils.io import atomic_write_text
    from ..viz import save_figure, signal_gain_plot

    exp = report.experiment
    if not exp.datasets or not exp.configs:
        return None
    learned = {v: c for v, c in exp.configs.items() if c.sr.name in ("vdsr", "vdsr_ca")}
    if not learned:
        return None
    cfg = learned.get("sr_id_ps", list(learned.values())[-1])  # the reference row: G as PS-HRNet trains it
    ds_name = next(iter(exp.datasets))
    split = min(k for (_, d, k) in exp.runs if d == ds_name)
    make = lambda init: build_sr(replace(cfg.sr, init=init))  # noqa: E731
    train, dev = exp.datasets[ds_name].split(split).train, cfg.runtime.precision_for().device

    def batch(interpolation: str):  # G's input as G is fed: each trained G with its own interpolation
        x, t = training_batch(train, cfg.data.size, interpolation, tuple(cfg.data.rates), num)
        return x.to(dev), t.to(dev)

    x, target = batch(make("he").input_interpolation)
    gains, summary = compare_inits(make, x, target, seed=cfg.seed)
    extra_g, extra_s = [], []
    for name, sr in _trained_gs(exp, report.rows, ds_name, split).items():
        xs, ts = batch(sr.input_interpolation)
        p = next(sr.parameters())
        rep = signal_report(sr, xs.to(p.device), ts.to(p.device))
        extra_g += [{"init": name, "block": i + 1, "gain": g} for i, g in enumerate(rep["block_gains"])]
        extra_s.append({"init": name, **{k: rep[k] for k in SUMMARY}})
    gains = pd.concat([gains, pd.DataFrame(extra_g)], ignore_index=True) if extra_g else gains
    summary = pd.concat([summary, pd.DataFrame(extra_s)], ignore_index=True) if extra_s else summary
    text = conclusion(summary)
    out = report.out
    if out is None:
        raise ValueError("report.out: the profile's output folder is not set (lib.workflow.run_and_tabulate sets it)")
    fig = signal_gain_plot(gains, title=f"{cfg.sr.name} {cfg.sr.depth}×{cfg.sr.width} on {ds_name} training pairs")
    files = [atomic_write_text(out / "tables" / "sr_signal.csv", summary.to_csv(index=False)),
             atomic_write_text(out / "tables" / "sr_signal_gains.csv", gains.to_csv(index=False)),
             atomic_write_text(out / "tables" / "sr_signal.md", _markdown(summary, text, cfg)),
             save_figure(fig, out / "figures" / "sr_signal_gain.png")]
    return SignalReport(gains, summary, text, fig, files)
