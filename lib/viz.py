"""Figures for the notebooks and the results: example grids (LR next to HR per camera), the distribution of r, training
curves, restorations, rankings, CMC curves.

Every figure is an off-screen :class:`NotebookFigure` (:func:`subplots`), never pyplot's global state: a figure drawn
in a widget callback or a worker thread cannot leak into another cell, and nothing needs closing. A figure that is a
cell's value shows itself as its PNG; a cell that saves one shows it with :func:`show_figure` (the PNG it saved), and
a table's saved figures are shown with :func:`show_saved`."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .data.mlr_build import load_rgb
from .data.mlr_dataset import MLRDataset
from .utils.io import atomic_write_bytes

__all__ = ["NotebookFigure", "subplots", "figure_png", "save_figure", "show_figure", "show_saved", "identity_grid",
           "rate_histogram", "restoration_grid", "quality_vs_rate", "ranked_list", "cmc_curves"]


class NotebookFigure(Figure):
    """An off-screen :class:`~matplotlib.figure.Figure` that shows itself as its PNG when it is a notebook cell's
    value (``_repr_png_``), whatever the matplotlib backend: no pyplot state is needed to see it."""

    def _repr_png_(self) -> bytes:
        return figure_png(self)


def subplots(nrows: int = 1, ncols: int = 1, **kw):
    """``(figure, axes)`` as :func:`matplotlib.pyplot.subplots` gives them, but on an off-screen
    :class:`NotebookFigure`: no pyplot state (nothing to close, no figure shown twice by the inline backend, safe in
    widget callbacks and threads); the figure is freed with its last reference. ``figsize`` and the
    :meth:`~matplotlib.figure.Figure.subplots` keywords as for pyplot."""
    fig = NotebookFigure(figsize=kw.pop("figsize", None))
    return fig, fig.subplots(nrows, ncols, **kw)


def figure_png(fig, dpi: int = 110) -> bytes:
    """A matplotlib figure as PNG bytes (no timestamp in the metadata, so equal figures give equal bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG atomically."""
    return atomic_write_bytes(path, figure_png(fig, dpi))


def _display_png(png: bytes) -> None:
    """Display PNG bytes inside a notebook's kernel; nothing outside IPython."""
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:  # plain Python without IPython
        return
    if get_ipython() is not None:
        display(Image(data=png, format="png"))


def show_figure(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save ``fig`` as :func:`save_figure` does and, inside a notebook's kernel, display the saved PNG (what the
    notebook shows is the file it wrote). Outside IPython it only saves. Returns the file's path."""
    png = figure_png(fig, dpi)
    out = atomic_write_bytes(path, png)
    _display_png(png)
    return out


def show_saved(paths) -> list[Path]:
    """Display, in a notebook's kernel, every PNG among ``paths`` (e.g. the files a table wrote), in order; returns
    them. A listed PNG that is missing is an error naming it."""
    pngs = [Path(p) for p in paths if str(p).endswith(".png")]
    for p in pngs:
        if not p.is_file():
            raise FileNotFoundError(f"show_saved: {p} was listed as written but is not a file")
        _display_png(p.read_bytes())
    return pngs


def identity_grid(ds: MLRDataset, num_identities: int = 4, *, split: int = 0, seed: int = 0, scale: int = 2):
    """One row per test identity: each camera's image, LR ones shown at true size beside their HR original.

    Images are drawn at their true pixel size (×``scale``), so the resolution gap is visible as it is.
    """

    s = ds.split(split)
    q_pids = sorted({im.pid for im in s.query})
    rng = np.random.default_rng(seed)
    pids = sorted(rng.choice(q_pids, size=min(num_identities, len(q_pids)), replace=False).tolist())
    by_pid: dict[int, list] = {}
    for im in s.query + s.gallery:
        by_pid.setdefault(im.pid, []).append(im)
    cols = []
    for pid in pids:
        row = []
        for cam in sorted({im.camid for im in by_pid[pid]}):
            im = next(x for x in by_pid[pid] if x.camid == cam)
            if im.res == "lr" and im.lr_path is not None:
                row.append((load_rgb(im.lr_path), f"cam {cam} LR r={im.r}"))
                row.append((load_rgb(im.hr_path), f"cam {cam} HR original"))
            else:
                row.append((load_rgb(im.path), f"cam {cam} {'LR (native)' if im.res == 'lr' else 'HR'}"))
        cols.append((pid, row))
    ncol = max(len(r) for _, r in cols)
    hmax = max(img.height for _, r in cols for img, _ in r)
    wmax = max(img.width for _, r in cols for img, _ in r)
    fig, axes = subplots(len(cols), ncol, figsize=(ncol * wmax * scale / 80 + 0.5, len(cols) * hmax * scale / 80 + 0.6),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for r, (pid, row) in enumerate(cols):
        for c, (img, title) in enumerate(row):
            ax = axes[r, c]
            # true size: place the image in a canvas of the largest size, top-left aligned
            ax.imshow(np.asarray(img), extent=(0, img.width, img.height, 0), interpolation="nearest")
            ax.set_xlim(0, wmax)
            ax.set_ylim(hmax, 0)
            ax.set_title(f"id {pid}\n{title}" if c == 0 else title, fontsize=7)
    fig.suptitle(f"{ds.name}: the same person in each camera (true pixel sizes)", fontsize=9)
    fig.tight_layout()
    return fig


def rate_histogram(ds: MLRDataset):
    """Bar chart: number of synthesised LR images per down-sampling rate r (and LR image heights)."""

    hist = ds.rate_histogram()
    fig, axes = subplots(1, 2, figsize=(7, 2.6))
    if hist:
        axes[0].bar([str(k) for k in hist], list(hist.values()), color="#4c72b0")
        for k, v in hist.items():
            axes[0].annotate(str(v), (str(k), v), ha="center", va="bottom", fontsize=8)
    else:
        axes[0].text(0.5, 0.5, "no synthesised images\n(natively low-resolution)", ha="center", va="center",
                     transform=axes[0].transAxes)
    axes[0].set_xlabel("down-sampling rate r")
    axes[0].set_ylabel("LR images")
    heights = [ds.manifest["images"][im.index]["lr_size"][0] for im in ds.images if im.lr_path is not None]
    if not heights:
        from PIL import Image

        heights = []
        for im in ds.images:
            if im.res == "lr":
                with Image.open(im.path) as f:
                    heights.append(f.height)
    axes[1].hist(heights, bins=20, color="#dd8452")
    axes[1].set_xlabel("LR image height (px)")
    axes[1].set_ylabel("images")
    fig.suptitle(f"{ds.name}: resolution of the query camera", fontsize=9)
    fig.tight_layout()
    return fig


def training_curves(histories: dict[str, list[dict]],
                    keys: tuple[str, ...] = ("loss_total", "loss_ce", "loss_bh", "loss_sr", "loss_ps")):
    """Loss terms per epoch, one panel per term, one line per run (label → history records)."""

    present = [k for k in keys if any(k in rec for h in histories.values() for rec in h)]
    fig, axes = subplots(1, max(1, len(present)), figsize=(3.2 * max(1, len(present)), 2.6), squeeze=False)
    for ax, key in zip(axes[0], present):
        for label, hist in histories.items():
            pts = [(r["epoch"], r[key]) for r in hist if key in r]
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=3, label=label)
        ax.set_title(key.replace("loss_", "L_"), fontsize=9)
        ax.set_xlabel("epoch")
    if present:
        axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def restoration_examples(sr, images, size: tuple[int, int], *, num: int = 4, seed: int = 0, space: str = "y"):
    """Rows of (LR at true size, LR resized to the network size, VDSR-CA output, HR original), with PSNR.

    The PSNR is Table III's (:func:`lib.metrics.restoration.image_quality` on the 8-bit images, in ``space``: ``'y'``
    luma by default, as ``test.restoration_space``), so a figure and the table never disagree. Natively
    low-resolution queries (CAVIAR) have no HR original: their rows show the first three panels and no PSNR. The
    images go to ``sr``'s device.
    """
    import torch

    from .data.transforms import denormalize, normalize, resize, to_tensor
    from .metrics.restoration import image_quality, to_uint8

    def u8(x):  # a [0, 1] image as the table's uint8 array
        return to_uint8(normalize(x)[None])[0]

    cands = [im for im in images if im.res == "lr"]
    if not cands:
        raise ValueError("restoration_examples: no low-resolution image among the given images")
    device = next(sr.parameters()).device
    rng = np.random.default_rng(seed)
    picks = [cands[i] for i in sorted(rng.choice(len(cands), size=min(num, len(cands)), replace=False).tolist())]
    fig, axes = subplots(len(picks), 4, figsize=(6.4, 2.3 * len(picks) + 0.4), squeeze=False)
    was_training = sr.training
    sr.eval()
    try:
        for row, im in zip(axes, picks):
            lr_img = load_rgb(im.path)
            up = to_tensor(resize(lr_img, size))
            hr = to_tensor(resize(load_rgb(im.hr_path), size)) if im.lr_path is not None else None
            with torch.inference_mode():
                out = denormalize(sr(normalize(up)[None].to(device)).float().cpu()[0])
            psnr = ((lambda x: f" {image_quality(u8(x), u8(hr), space)[0]:.1f} dB") if hr is not None
                    else (lambda x: ""))
            rate = f"r={im.r}" if im.r else "native"
            panels = [(np.asarray(lr_img) / 255.0, f"LR {rate} {lr_img.height}×{lr_img.width}"),
                      (up.permute(1, 2, 0).numpy(), f"bilinear{psnr(up)}"),
                      (out.permute(1, 2, 0).numpy(), f"VDSR-CA{psnr(out)}")]
            panels.append((hr.permute(1, 2, 0).numpy(), "HR") if hr is not None else (None, "no HR original"))
            for ax, (img, title) in zip(row, panels):
                ax.axis("off")
                if img is None:
                    ax.set_title(title, fontsize=7)
                    continue
                ax.imshow(np.clip(img, 0, 1), interpolation="nearest")
                ax.set_title(title, fontsize=7)
    finally:
        sr.train(was_training)
    fig.suptitle(f"LR query → restored by the student's VDSR-CA → HR original (PSNR vs HR, {space.upper()})",
                 fontsize=8)
    fig.tight_layout()
    return fig


def rank1_per_split(summaries: dict[str, dict], labels: dict[str, str] | None = None, metric: str = "rank1"):
    """Rank-1 per method and dataset, one dot per identity split and a bar at the mean.

    Args:
        summaries: dataset name → ``{"outputs": {key: {"aggregate": …}}, "splits": […]}`` (a summary of
            :mod:`lib.results.summaries`, or one assembled from several, see :func:`rows_by_dataset`).
        labels: output key → label (default: the key).
        metric: ``rank1`` (default) or another aggregated metric.
    """

    labels = labels or {}
    names = list(summaries)
    order = list(dict.fromkeys(m for d in summaries.values() for m in d["outputs"]))  # one colour per row
    fig, axes = subplots(1, len(names), figsize=(4.2 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        methods = summaries[name]["outputs"]
        keys = [m for m in methods if metric in methods[m]["aggregate"]]
        for i, m in enumerate(keys):
            agg = methods[m]["aggregate"][metric]
            vals = 100 * np.asarray(agg["values"], dtype=float)
            offsets = np.linspace(-0.15, 0.15, len(vals)) if len(vals) > 1 else np.zeros(1)
            color = f"C{order.index(m) % 10}"
            ax.bar(i, 100 * agg["mean"], width=0.6, color=color, alpha=0.35)
            ax.scatter(i + offsets, vals, color=color, edgecolor="k", zorder=3, s=28)
        ax.set_xticks(range(len(keys)), [labels.get(m, m) for m in keys], rotation=25, ha="right", fontsize=8)
        splits = summaries[name].get("splits", [])
        ax.set_title(f"{name} ({len(splits)} split{'s' if len(splits) != 1 else ''})", fontsize=10)
        ax.set_ylabel(f"{metric} (%)")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def rows_by_dataset(summaries: dict, rows) -> dict[str, dict]:
    """Assemble, per dataset, the outputs of several variants as rows: ``{dataset: {"outputs": {label: …},
    "splits": …}}`` from ``{(variant, dataset): summary}`` and a table's row specs (label, variant, output)."""
    out: dict[str, dict] = {}
    for (variant, ds), rec in summaries.items():
        for r in rows:
            if r.variant == variant and r.output in rec["outputs"]:
                d = out.setdefault(ds, {"outputs": {}, "splits": rec["splits"]})
                d["outputs"][r.label] = rec["outputs"][r.output]
    return out


def ranking_plot(frame, metric_label: str = "Rank-1 (%)"):
    """Horizontal bars of a ranking frame (index: row label; columns: datasets, values: mean), best on top."""

    frame = frame.iloc[::-1]
    fig, ax = subplots(figsize=(6.5, 0.28 * len(frame) + 1.4))
    height = 0.8 / max(1, frame.shape[1])
    for j, col in enumerate(frame.columns):
        ax.barh(np.arange(len(frame)) + j * height, frame[col].to_numpy(dtype=float), height=height, label=str(col))
    ax.set_yticks(np.arange(len(frame)) + height * (frame.shape[1] - 1) / 2, frame.index, fontsize=7)
    ax.set_xlabel(metric_label)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def bare_axes(ax) -> None:
    """No ticks and no frame, but keep the axis labels (used as captions)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def restoration_grid(examples: list[dict], names=None, space: str | None = None):
    """Fig. 5-style grid: one row per (person, r): the LR image, each restored variant, the HR reference.

    Args:
        examples: as :func:`lib.metrics.restored_examples` returns them.
        names: the restored variants to show, in order (default: all, in the examples' order).
        space: the colour space the PSNR / SSIM were computed in, for the caption (default: the examples'
            ``space``, else ``'y'``).

    The LR image is drawn at its true pixel size relative to the others: inside an axis whose limits are the
    network size (the size of the restored and HR images), top-left aligned, so an image 4× smaller than the
    network input looks 4× smaller. Each restored image has its PSNR (and SSIM) against the HR image under it.
    """

    if not examples:
        raise ValueError("restoration_grid: no example")
    names = list(names) if names is not None else list(examples[0]["restored"])
    missing = sorted({n for ex in examples for n in names if n not in ex["restored"]})
    if not names or missing:
        raise ValueError(f"restoration_grid: unknown variant(s) {missing}; the examples have "
                         f"{list(examples[0]['restored'])}")
    space = space or examples[0].get("space", "y")
    h, w = np.asarray(examples[0]["hr"]).shape[:2]
    ncol = len(names) + 2
    cell_w = 1.15
    fig, axes = subplots(len(examples), ncol, figsize=(ncol * cell_w + 0.4, len(examples) * (cell_w * h / w + 0.45) + 0.5),
                             squeeze=False)
    titles = ["LR (true size)", *names, "HR"]
    for row, ex in zip(axes, examples):
        lr = np.asarray(ex["lr"])
        lh, lw = lr.shape[:2]
        ax = row[0]
        ax.imshow(lr, extent=(0, lw, lh, 0), interpolation="nearest")
        ax.set_xlim(0, max(w, lw))
        ax.set_ylim(max(h, lh), 0)
        ax.set_ylabel(f"id {ex['pid']}, r={ex['r']}", fontsize=7)
        ax.set_xlabel(f"{lh}×{lw}", fontsize=7)
        for ax, name in zip(row[1:-1], names):
            ax.imshow(np.asarray(ex["restored"][name]), interpolation="nearest")
            caption = f"PSNR {ex['psnr'][name]:.1f} dB"
            if name in ex.get("ssim", {}):
                caption += f"\nSSIM {ex['ssim'][name]:.3f}"
            ax.set_xlabel(caption, fontsize=7)
        row[-1].imshow(np.asarray(ex["hr"]), interpolation="nearest")
        row[-1].set_xlabel(f"{h}×{w}", fontsize=7)
        for ax in row:
            bare_axes(ax)
    for ax, title in zip(axes[0], titles):
        ax.set_title(title, fontsize=8)
    where = "Y channel (BT.601)" if space == "y" else "RGB"
    fig.suptitle(f"LR → restored → HR; PSNR / SSIM against the HR image on {where}", fontsize=8)
    fig.tight_layout()
    return fig


def quality_vs_rate(frame):
    """PSNR (dB) and SSIM against the down-sampling rate r, side by side; one line per variant.

    Args:
        frame: a pandas DataFrame with columns ``variant``, ``dataset`` (optional), ``r``, ``psnr``, ``ssim``
            and optionally ``psnr_std`` / ``ssim_std`` (error bars). With several datasets, each dataset
            has its own line style (colour: variant).
    """

    missing = [c for c in ("variant", "r", "psnr", "ssim") if c not in frame.columns]
    if missing:
        raise ValueError(f"quality_vs_rate: the frame lacks column(s) {missing} (has {list(frame.columns)})")
    if len(frame) == 0:
        raise ValueError("quality_vs_rate: empty frame")
    frame = frame.assign(dataset=frame["dataset"] if "dataset" in frame.columns else "")
    variants = list(dict.fromkeys(frame["variant"]))
    datasets = list(dict.fromkeys(frame["dataset"]))
    styles = ["-", "--", ":", "-."]
    fig, axes = subplots(1, 2, figsize=(7.6, 3.0))
    for vi, variant in enumerate(variants):
        for di, ds in enumerate(datasets):
            sub = frame[(frame["variant"] == variant) & (frame["dataset"] == ds)].sort_values("r")
            if sub.empty:
                continue
            label = str(variant) if len(datasets) == 1 else f"{variant} ({ds})"
            for ax, key in zip(axes, ("psnr", "ssim")):
                std = f"{key}_std"
                yerr = sub[std].to_numpy(dtype=float) if std in sub.columns else None
                ax.errorbar(sub["r"].to_numpy(dtype=float), sub[key].to_numpy(dtype=float), yerr=yerr,
                            color=f"C{vi % 10}", linestyle=styles[di % len(styles)], marker="o", ms=4, capsize=3,
                            label=label)
    rates = sorted({int(r) for r in frame["r"]})
    for ax, ylabel in zip(axes, ("PSNR (dB)", "SSIM")):
        ax.set_xticks(rates)
        ax.set_xlabel("down-sampling rate r")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


#: Frame colours of a ranked list: a true match, a wrong one, unknown (a user's unlabelled gallery).
MATCH_COLOURS = {True: "#1a9850", False: "#d73027", None: "#888888"}


def ranked_list(query: np.ndarray, gallery: list[np.ndarray], *, matches=None, distances=None, captions=None,
                query_caption: str = "query", title: str = ""):
    """A query and its top-ranked gallery images in one row, each gallery image framed green (true match), red
    (wrong) or grey (unknown: ``matches`` ``None``), its rank and distance under it.

    Args:
        query: ``(h, w, 3)`` uint8 (drawn at its true size relative to the gallery images' height).
        gallery: ranked ``(H, W, 3)`` uint8 images, best first.
        matches: a bool per gallery image, or ``None``.
        distances, captions: a float / extra text per gallery image (optional).
    """
    from matplotlib.patches import Rectangle

    n = len(gallery)
    if n == 0:
        raise ValueError("ranked_list: no gallery image to show")
    matches = [None] * n if matches is None else list(matches)
    gh = max(np.asarray(g).shape[0] for g in gallery)
    gw = max(np.asarray(g).shape[1] for g in gallery)
    fig, axes = subplots(1, n + 1, figsize=(1.05 * (n + 1) + 0.3, 1.05 * gh / gw * 1.0 + 0.9), squeeze=False)
    axes = axes[0]
    q = np.asarray(query)
    axes[0].imshow(q, extent=(0, q.shape[1], q.shape[0], 0), interpolation="nearest")
    axes[0].set_xlim(0, max(gw, q.shape[1]))
    axes[0].set_ylim(max(gh, q.shape[0]), 0)
    axes[0].set_xlabel(query_caption, fontsize=7)
    for k, (ax, img) in enumerate(zip(axes[1:], gallery)):
        img = np.asarray(img)
        ax.imshow(img, interpolation="nearest")
        colour = MATCH_COLOURS[None if matches[k] is None else bool(matches[k])]
        ax.add_patch(Rectangle((0, 0), img.shape[1] - 1, img.shape[0] - 1, fill=False, edgecolor=colour, linewidth=4))
        text = f"#{k + 1}"
        if distances is not None:
            text += f"  d={float(distances[k]):.3g}"
        if captions is not None:
            text += f"\n{captions[k]}"
        ax.set_xlabel(text, fontsize=6.5)
    for ax in axes:
        bare_axes(ax)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return fig


def cmc_curves(curves: dict[str, list[float]], title: str = "", max_rank: int = 20):
    """CMC curves (fractions per rank) of several methods in one plot, Rank-1 in the legend."""

    if not curves:
        raise ValueError("cmc_curves: no curve to plot")
    fig, ax = subplots(figsize=(7.5, 3.4))
    for i, (label, cmc) in enumerate(sorted(curves.items(), key=lambda kv: -kv[1][0])):
        c = np.asarray(cmc[:max_rank], dtype=float) * 100
        ax.plot(np.arange(1, len(c) + 1), c, marker=".", linestyle=("-", "--", ":")[i // 10 % 3],
                label=f"{label} (R1 {c[0]:.1f})")
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def signal_gain_plot(frame, title: str = ""):
    """Signal gain of G's gated body blocks (:mod:`lib.models.sr.diagnostics`), one line per ``init``, log scale:
    each block's own gain (left) and the gain accumulated from the first block (right: where the body's signal ends).

    Args:
        frame: a DataFrame with columns ``init``, ``block`` (1-based) and ``gain``; an ``init`` ending in
            ``(trained)`` is drawn dashed (a G after training, beside the fresh ones).
    """
    from matplotlib.ticker import MaxNLocator

    missing = [c for c in ("init", "block", "gain") if c not in frame.columns]
    if missing:
        raise ValueError(f"signal_gain_plot: the frame lacks column(s) {missing} (has {list(frame.columns)})")
    if len(frame) == 0:
        raise ValueError("signal_gain_plot: empty frame")
    fig, axes = subplots(1, 2, figsize=(9.0, 3.3))
    for i, init in enumerate(dict.fromkeys(frame["init"])):
        sub = frame[frame["init"] == init].sort_values("block")
        style = dict(marker="o", ms=3, color=f"C{i % 10}", label=str(init),
                     linestyle="--" if str(init).endswith("(trained)") else "-")
        axes[0].plot(sub["block"], sub["gain"], **style)
        axes[1].plot(sub["block"], sub["gain"].cumprod(), **style)
    for ax, ylabel in zip(axes, ("block gain RMS(out) / RMS(in)", "gain from block 1 to block i")):
        ax.axhline(1.0, color="0.6", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("gated body block")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].legend(fontsize=7)
    fig.suptitle(title or "G's signal through its gated blocks", fontsize=10)
    fig.tight_layout()
    return fig
