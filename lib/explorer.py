"""The interactive explorer of notebook 13: pick a trained run and a query, see what the method sees.

:class:`ExplorerData` is the logic (no widgets, unit-tested): the profiles, datasets, splits and trained outputs
that exist (:func:`lib.inference.output_runs`), and for one output, one query and one query rate a
:class:`QueryView` — the query at its true size, its bilinear up-sampling, the restorations of the SR modules
trained on that split with their PSNR, the HR original, and the ranked gallery (true matches, the rank of the first
one, the query's AP). :class:`Explorer` wires it to ipywidgets; every picture is an ``Image`` widget (PNG), so the
executed notebook keeps them in its saved widget state and the tests read what is shown from the widgets' values.

Rankings are over the split's whole gallery under the multi-shot protocol (:func:`lib.metrics.rank_query`: the
query's own identity under its own camera is junk), so a query's rank and AP do not depend on the random
single-shot gallery draws behind the tables' numbers (the CMC plot shows those, as recorded by each run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data.mlr_build import load_rgb, to_rgb8
from .data.transforms import resize
from .inference import QuerySource, load_run, output_runs
from .metrics import image_quality, rank_query
from .utils.paths import resolve_path
from .viz import cmc_curves, figure_png, ranked_list

__all__ = ["QueryView", "ExplorerData", "Explorer", "RATE_CHOICES", "profiles_with_runs"]

#: The query-rate control: ``None`` = the query as stored, else the HR original down-sampled by r.
RATE_CHOICES: tuple[int | None, ...] = (None, 1, 2, 3, 4, 5, 6, 7, 8)


def _headlines() -> list[str]:
    """Each registered method's headline output, ``method/default/output`` (what the explorer shows first)."""
    from .methods import METHODS

    return [f"{m.name}/default/{m.headline_output}" for m in METHODS.in_order()]


def default_output(outputs: list[str]) -> str | None:
    """The output the explorer shows first among ``outputs``: the first registered method's headline that has runs
    (PS-HRNet's student before FTWA), else the first output."""
    return next((h for h in _headlines() if h in outputs), outputs[0] if outputs else None)


def profiles_with_runs(output_root: str | Path = "outputs") -> list[str]:
    """Profiles under ``output_root`` that hold at least one finished run."""
    root = resolve_path(output_root)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and output_runs(p)) if root.is_dir() else []


def _uint8(img) -> np.ndarray:
    return np.asarray(to_rgb8(img), dtype=np.uint8)  # scales high-bit-depth modes instead of clipping them


@dataclass
class QueryView:
    """What the explorer shows for one query (see the module docstring)."""

    label: str
    query_index: int
    pid: int
    rate: int | None
    lr: np.ndarray
    upsampled: np.ndarray
    hr: np.ndarray | None
    restorations: dict[str, tuple[np.ndarray, float | None]] = field(default_factory=dict)
    top: list[tuple[int, int, bool, float]] = field(default_factory=list)  # (gallery index, pid, match, distance)
    first_match: int | None = None
    ap: float = 0.0

    @property
    def summary(self) -> str:
        src = "as stored" if self.rate is None else ("HR original" if self.rate == 1 else f"HR original ÷ {self.rate}")
        first = "no true match in the gallery" if self.first_match is None else f"first true match at rank {self.first_match}"
        return (f"{self.label} · query #{self.query_index} (id {self.pid}, {src}, {self.lr.shape[0]}×{self.lr.shape[1]} px)"
                f" · {first} · AP {100 * self.ap:.1f}%")


class ExplorerData:
    """Runs of one profile, loaded lazily and cached (a run's matcher, gallery embedding, distances per rate)."""

    def __init__(self, profile_dir: str | Path, *, max_restorations: int = 4) -> None:
        self.profile_dir = resolve_path(profile_dir)
        self.max_restorations = max_restorations
        self._outputs = output_runs(self.profile_dir)
        self._loaded: dict[str, Any] = {}
        self._gallery: dict[str, Any] = {}
        self._dist: dict[tuple[str, int | None], np.ndarray] = {}
        self._ap: dict[tuple[str, int | None], np.ndarray] = {}

    # ------------------------------------------------------------------ what exists
    def datasets(self) -> list[str]:
        return sorted({r.dataset for r in self._outputs})

    def splits(self, dataset: str) -> list[int]:
        return sorted({r.split for r in self._outputs if r.dataset == dataset})

    def outputs(self, dataset: str, split: int) -> list[str]:
        """Labels ``method/variant/output`` of the trained outputs of a dataset and split."""
        return sorted(r.label for r in self._outputs if r.dataset == dataset and r.split == split)

    def _key(self, label: str, dataset: str, split: int) -> str:
        return f"{dataset}/{split}/{label}"

    def entry(self, label: str, dataset: str, split: int):
        for r in self._outputs:
            if r.label == label and r.dataset == dataset and r.split == split:
                return r.entry, r.output
        raise KeyError(f"no finished run {label!r} for {dataset} split {split}; trained: "
                       f"{', '.join(self.outputs(dataset, split)) or 'none'}")

    # ------------------------------------------------------------------ loading and caching
    def loaded(self, label: str, dataset: str, split: int):
        """``(run, matcher, split)`` of an output (loaded once)."""
        key = self._key(label, dataset, split)
        if key not in self._loaded:
            e, o = self.entry(label, dataset, split)
            run = load_run(e.path)
            self._loaded[key] = (run, run.matcher(o), run.split())
        return self._loaded[key]

    def distances(self, label: str, dataset: str, split: int, rate: int | None = None) -> np.ndarray:
        """(query × gallery) distances of the split's queries at ``rate`` (cached)."""
        key = (self._key(label, dataset, split), rate)
        if key not in self._dist:
            run, m, sp = self.loaded(label, dataset, split)
            gk = self._key(label, dataset, split)
            if gk not in self._gallery:
                self._gallery[gk] = m.embed_gallery(sp.gallery)
            self._dist[key] = m.distances(sp.query, sp.gallery, QuerySource(rate), gallery_embedding=self._gallery[gk])
        return self._dist[key]

    def _ranking(self, label, dataset, split, rate, qi) -> dict:
        _, _, sp = self.loaded(label, dataset, split)
        q = sp.query[qi]
        d = self.distances(label, dataset, split, rate)[qi]
        return rank_query(d, q.pid, q.camid, [g.pid for g in sp.gallery], [g.camid for g in sp.gallery])

    def average_precisions(self, label: str, dataset: str, split: int, rate: int | None = None) -> np.ndarray:
        """AP of every query (the hardest-first order)."""
        key = (self._key(label, dataset, split), rate)
        if key not in self._ap:
            n = len(self.loaded(label, dataset, split)[2].query)
            self._ap[key] = np.array([self._ranking(label, dataset, split, rate, i)["ap"] for i in range(n)])
        return self._ap[key]

    def query_order(self, label: str, dataset: str, split: int, rate: int | None = None, hardest_first: bool = False) -> list[int]:
        """Query indices as listed, or by AP ascending (ties by index)."""
        if not hardest_first:
            return list(range(len(self.loaded(label, dataset, split)[2].query)))
        ap = self.average_precisions(label, dataset, split, rate)
        return [int(i) for i in np.lexsort((np.arange(ap.size), ap))]

    def can_remake(self, label: str, dataset: str, split: int, qi: int) -> bool:
        """Whether the query has an HR original (re-making it at a rate needs one)."""
        return self.loaded(label, dataset, split)[2].query[qi].has_hr_original

    # ------------------------------------------------------------------ one query
    def view(self, label: str, dataset: str, split: int, qi: int, rate: int | None = None, top_k: int = 10) -> QueryView:
        """Everything shown for query ``qi`` of the split at ``rate`` with output ``label``."""
        run, m, sp = self.loaded(label, dataset, split)
        if not 0 <= qi < len(sp.query):
            raise IndexError(f"query index {qi} outside 0..{len(sp.query) - 1}")
        q = sp.query[qi]
        src = QuerySource(rate)
        src.check([q])
        size = m.size
        lr = src.lr_image(q)
        hr = _uint8(resize(load_rgb(q.hr_path), size, "bilinear")) if q.has_hr_original else None
        view = QueryView(label, qi, int(q.pid), rate, _uint8(lr), _uint8(resize(lr, size, "bilinear")), hr)
        for other in self.restoring_outputs(dataset, split, first=label):
            orun, om, _ = self.loaded(other, dataset, split)
            img = om.restore([q], src)[0]
            space = getattr(orun.cfg.test, "restoration_space", "y")  # as the run's own PSNR
            view.restorations[other] = (img, image_quality(img, hr, space)[0] if hr is not None else None)
        r = self._ranking(label, dataset, split, rate, qi)
        d = self.distances(label, dataset, split, rate)[qi]
        view.top = [(int(g), int(sp.gallery[g].pid), bool(mt), float(d[g]))
                    for g, mt in zip(r["order"][:top_k], r["matches"][:top_k])]
        view.first_match, view.ap = r["first_match"], r["ap"]
        return view

    def restoring_outputs(self, dataset: str, split: int, first: str | None = None) -> list[str]:
        """Outputs of the split whose run restores images (an SR module: its record has PSNR), ``first``
        first, at most ``max_restorations``."""
        have = [k for k in self.outputs(dataset, split) if k != first and "psnr" in self.recorded(k, dataset, split)]
        if first is not None and self.loaded(first, dataset, split)[1].sr is not None:  # its own G, recorded or not
            have.insert(0, first)
        return have[: self.max_restorations]

    def recorded(self, label: str, dataset: str, split: int) -> dict:
        """The output's recorded test metrics (``metrics.json``; no model is loaded)."""
        import json

        from .methods import METHODS

        e, o = self.entry(label, dataset, split)
        key = METHODS.get(e.method).outputs[o][1]
        return json.loads((e.path / "metrics.json").read_text())["metrics"].get(key, {})

    def cmc(self, dataset: str, split: int) -> dict[str, list[float]]:
        """Recorded CMC (the tables' protocol) of every output of a dataset and split."""
        curves = {k: self.recorded(k, dataset, split).get("cmc") for k in self.outputs(dataset, split)}
        return {k: c for k, c in curves.items() if c}


def query_figure(view: QueryView):
    """The query panel: LR (true size), bilinear up-sampling, restorations with PSNR, HR original."""
    from .viz import bare_axes, subplots

    panels = [("LR query\n(true size)", view.lr), ("bilinear ×", view.upsampled)]
    for name, (img, psnr) in view.restorations.items():
        panels.append((f"{name.split('/')[1]}\n" + (f"PSNR {psnr:.1f} dB" if psnr is not None else "no HR"), img))
    if view.hr is not None:
        panels.append(("HR original", view.hr))
    h, w = view.upsampled.shape[:2]
    fig, axes = subplots(1, len(panels), figsize=(1.15 * len(panels) + 0.3, 1.15 * h / w + 0.8), squeeze=False)
    for ax, (title, img) in zip(axes[0], panels):
        ax.imshow(img, extent=(0, img.shape[1], img.shape[0], 0), interpolation="nearest")
        ax.set_xlim(0, max(w, img.shape[1]))
        ax.set_ylim(max(h, img.shape[0]), 0)
        ax.set_xlabel(title, fontsize=6.5)
        bare_axes(ax)
    fig.tight_layout()
    return fig


class Explorer:
    """ipywidgets front end of :class:`ExplorerData` (notebook 13). ``display(explorer.widget)`` shows it.

    Controls: profile, dataset, split, method (``method/variant/output``), query order (as listed | hardest first),
    query (a slider over that order), query rate (0 = as stored | r = 1…8), top-k. Shown: a summary line, the query
    panel, the ranked gallery and the CMC curves of every method of the dataset and split.
    """

    def __init__(self, output_root: str | Path = "outputs", profile: str = "tiny", *, dataset: str | None = None,
                 split: int = 0, method: str | None = None, top_k: int = 10) -> None:
        import ipywidgets as W

        self.output_root = resolve_path(output_root)
        profiles = profiles_with_runs(self.output_root)
        if not profiles:
            raise FileNotFoundError(f"no trained run under {self.output_root}: run `make demo` (or a table's notebook) "
                                    "first")
        if profile not in profiles:
            raise ValueError(f"profile {profile!r} has no trained run under {self.output_root}; profiles with runs: "
                             f"{', '.join(profiles)}")
        self._busy = False
        self._order: list[int] = []
        self._note = ""
        self.profile = W.Dropdown(options=profiles, value=profile, description="profile")
        self.dataset = W.Dropdown(description="dataset")
        self.split = W.Dropdown(description="split")
        self.method = W.Dropdown(description="method", layout=W.Layout(width="420px"))
        self.order = W.ToggleButtons(options=["as listed", "hardest first"], value="as listed", description="order")
        self.query = W.IntSlider(min=0, max=0, value=0, description="query", continuous_update=False)
        # 0 stands for "as stored" (a Dropdown's None means "nothing selected")
        self.rate = W.Dropdown(options=[("as stored", 0)] + [(f"r = {r}", r) for r in RATE_CHOICES[1:]],
                               value=0, description="query rate")
        self.top_k = W.IntSlider(min=1, max=20, value=top_k, description="top-k", continuous_update=False)
        self.status = W.HTML()
        # what a control's callback raised: shown on the page (an exception in an ipywidgets callback otherwise reaches
        # only the JupyterLab log, and the page silently keeps the previous pictures)
        self.errors = W.Output(layout=W.Layout(max_height="16em", overflow="auto"))
        self.last_error: BaseException | None = None
        self.query_image = W.Image(format="png")
        self.ranking_image = W.Image(format="png")
        self.cmc_image = W.Image(format="png")
        self.view: QueryView | None = None
        self.widget = W.VBox([
            W.HBox([self.profile, self.dataset, self.split]), W.HBox([self.method, self.rate]),
            W.HBox([self.order, self.query, self.top_k]), self.status, self.errors,
            W.HTML("<b>query</b>"), self.query_image, W.HTML("<b>ranked gallery</b> (green: same person, red: another)"),
            self.ranking_image, W.HTML("<b>CMC of every method on this dataset and split</b> (as recorded)"),
            self.cmc_image,
        ])
        self.profile.observe(self._guarded(self._on_profile), "value")
        self.dataset.observe(self._guarded(self._on_dataset), "value")
        self.split.observe(self._guarded(self._on_split), "value")
        for w in (self.method, self.order, self.rate):
            w.observe(self._guarded(self._on_method), "value")
        for w in (self.query, self.top_k):
            w.observe(self._guarded(self.refresh), "value")
        self._want = {"dataset": dataset, "split": split, "method": method}
        self._on_profile()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    # ------------------------------------------------------------------ errors on the page
    def _guarded(self, callback):
        """An observer that runs ``callback`` and, when it raises, shows the error on the page (the status line in red,
        the traceback in :attr:`errors`) instead of losing it in the kernel's log; a later callback that succeeds
        clears it. The constructor's first drawing is not guarded: a broken profile fails the cell that builds it."""
        def observer(_change) -> None:
            try:
                callback()
            except Exception as e:  # noqa: BLE001 -- everything a callback raises is shown, nothing is swallowed
                self._show_error(callback.__name__, e)
            else:
                if self.last_error is not None:
                    self.last_error = None
                    self.errors.outputs = ()
        return observer

    def _show_error(self, where: str, error: Exception) -> None:
        import html
        import traceback

        self.last_error = error
        self.status.value = (f'<span style="color:#b2182b"><b>{html.escape(type(error).__name__)}</b> in {where}: '
                             f"{html.escape(str(error))}</span> (traceback below; the pictures are of the last "
                             "choice that worked)")
        self.errors.outputs = ()
        self.errors.append_stderr("".join(traceback.format_exception(type(error), error, error.__traceback__)))

    # ------------------------------------------------------------------ cascade of choices
    def _quiet(self, w, **kw) -> None:
        """Set options/value without triggering the observers (the caller refreshes once)."""
        self._busy = True
        try:
            for k, v in kw.items():
                setattr(w, k, v)
        finally:
            self._busy = False

    def _pick(self, options, wanted):
        return wanted if wanted in options else (options[0] if options else None)

    def _on_profile(self) -> None:
        if self._busy:
            return
        self.data = ExplorerData(self.output_root / self.profile.value)
        ds = self.data.datasets()
        self._quiet(self.dataset, options=ds, value=self._pick(ds, self._want.pop("dataset", None)))
        self._on_dataset()

    def _on_dataset(self) -> None:
        if self._busy:
            return
        sp = self.data.splits(self.dataset.value)
        self._quiet(self.split, options=sp, value=self._pick(sp, self._want.pop("split", None)))
        self._on_split()

    def _on_split(self) -> None:
        if self._busy:
            return
        self._order = []  # another split: other queries
        outs = self.data.outputs(self.dataset.value, self.split.value)
        want = self._want.pop("method", None) or default_output(outs)
        self._quiet(self.method, options=outs, value=self._pick(outs, want))
        self.cmc_image.value = figure_png(cmc_curves(self.data.cmc(self.dataset.value, self.split.value),
                                                     title=f"{self.dataset.value}, split {self.split.value}"))
        self._on_method()

    def _on_method(self) -> None:
        """Method, order or rate changed: the same query stays shown (at its place in the new order)."""
        if self._busy:
            return
        args = (self.method.value, self.dataset.value, self.split.value)
        rate = self.rate.value or None
        sp = self.data.loaded(*args)[2]
        self._note = ""
        if rate is not None and not all(q.has_hr_original for q in sp.query):
            self._quiet(self.rate, value=0)
            rate = None
            self._note = " · <i>these queries are natively LR (no HR original): only as stored</i>"
        shown = self._order[self.query.value] if self._order and self.query.value < len(self._order) else None
        self._order = self.data.query_order(*args, rate=rate, hardest_first=self.order.value == "hardest first")
        pos = self._order.index(shown) if shown in self._order else min(self.query.value, len(self._order) - 1)
        self._quiet(self.query, max=len(self._order) - 1, value=pos)
        self.refresh()

    # ------------------------------------------------------------------ what is shown
    def refresh(self) -> None:
        """Recompute the view of the current choices and redraw the pictures."""
        if self._busy:
            return
        args = (self.method.value, self.dataset.value, self.split.value)
        qi = self._order[self.query.value]
        v = self.data.view(*args, qi, rate=self.rate.value or None, top_k=self.top_k.value)
        self.view = v
        _, _, sp = self.data.loaded(*args)
        gallery = [_uint8(resize(load_rgb(sp.gallery[g].hr_path), v.upsampled.shape[:2], "bilinear")) for g, *_ in v.top]
        fig = ranked_list(v.lr, gallery, matches=[m for _, _, m, _ in v.top], distances=[d for *_, d in v.top],
                          captions=[f"id {p}" for _, p, _, _ in v.top], query_caption=f"id {v.pid}",
                          title=v.summary)
        self.ranking_image.value = figure_png(fig)
        self.query_image.value = figure_png(query_figure(v))
        self.status.value = v.summary + self._note
