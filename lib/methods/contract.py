"""The method contract: what a method gives the shared code, and the configuration every method shares.

A method (PS-HRNet, FTWA, or one of yours in a package of its own) is a :class:`Method` registered in
:data:`lib.methods.METHODS`. The shared code — the run lifecycle, the tables, the workbook runner, the plan of runs,
the explorer, the resolution sweep, ``python -m lib.rank``, :func:`lib.inference.load_run` — asks the method object
and never a method by name:

* its typed configuration, a subclass of :class:`MethodConfig` (``seed``, ``data``, ``test``, ``runtime``: what
  every method has), loaded from ``configs/<method>/*.yaml``;
* its stages (:class:`lib.core.runs.Stage`), each described once: ``build`` makes what a stage trains, and the
  stage's ``modules`` hook is the part of that build :func:`lib.inference.load_run` calls again to rebuild a
  finished run's untrained modules (:class:`BuildModules`);
* its *outputs* (``output -> (stage, metrics key)``) and the hooks that use a finished output at test time:
  :class:`QueryPath` (what one LR query passes through: the methods table's cost columns) and :class:`MatcherHook`
  (the output's test as one object: explorer, sweep, ``lib.rank``);
* how it appears in the workbook: its tables (:class:`WorkbookTable`: the ``TABLES`` name, the table spec, the
  notebooks that make it), its extra notebook parameters, its headline output (the explorer's first choice), the
  outputs the resolution sweep shows, and its rows in the methods-side-by-side table (:class:`MethodsRow`).

docs/design.md ("Adding a method") walks through a third method against these files; ``tests/third_method`` is one,
registered without an edit under ``lib/`` (``LIB_METHODS=tests.third_method``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..core.runs import BuildModules, RunResult, Stage
from ..data.config import DataConfig
from ..engine.runtime import RuntimeConfig

if TYPE_CHECKING:  # only for the annotations: the inference layer sits above the methods
    from torch import nn

    from ..engine.precision import Precision
    from ..inference.matcher import Matcher

__all__ = ["Method", "MethodConfig", "TestConfig", "QueryPath", "BuildModules", "MatcherHook", "WorkbookTable",
           "MethodsRow"]


@dataclass(frozen=True)
class TestConfig:
    """The evaluation settings every method has (a change re-evaluates a finished run, never retrains it):
    ``flip`` (average the features of the image and its mirror), ``num_repeats`` (gallery draws of the single-shot
    protocol, PROTOCOL §6), ``batch_size``. A method's ``test`` section subclasses it."""

    flip: bool = True
    num_repeats: int = 10
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.num_repeats < 1:
            raise ValueError(f"num_repeats: expected at least 1, found {self.num_repeats}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size: expected at least 1, found {self.batch_size}")


@dataclass(frozen=True)
class MethodConfig:
    """What every method's configuration holds: ``seed``, ``data`` (:class:`~lib.data.config.DataConfig`), ``test``
    (:class:`TestConfig` or a subclass) and ``runtime`` (:class:`~lib.engine.runtime.RuntimeConfig`). A method
    subclasses it with its own sections, and may redeclare ``data`` / ``test`` with its own defaults or type."""

    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    test: TestConfig = field(default_factory=TestConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


class QueryPath(Protocol):
    """``(output, {stage: run}, cfg) -> (module, resize interpolation)``: what embeds one LR query for ``output`` at
    test time, and how the query is resized before it (for the methods table's parameter and cost columns)."""

    def __call__(self, output: str, runs: Mapping[str, RunResult], cfg: Any) -> tuple[nn.Module, str]: ...


class MatcherHook(Protocol):
    """``(output, {stage: run}, cfg, precision) -> Matcher``: the test of ``output`` as one object
    (:class:`lib.inference.Matcher`: embed queries, embed the gallery, distances)."""

    def __call__(self, output: str, runs: Mapping[str, RunResult], cfg: Any, precision: Precision) -> Matcher: ...


@dataclass(frozen=True)
class WorkbookTable:
    """A table of the workbook that ``make reproduce TABLES=…`` and the plan of runs know.

    Attributes:
        name: the ``TABLES`` entry (``"1"``, ``"ftwa2"``); also accepted as ``spec``.
        spec: the table spec (``configs/tables/<spec>.yaml``) and output name (``tables/<spec>.md``).
        notebooks: the notebooks that make it, in order (notebook 01 runs before them, once per dataset); none for
            a table made only from Python (:func:`lib.workflow.run_table`), which ``make reproduce`` refuses.
        plan_notebook: the notebook whose parameters (profile section included) the plan of runs reads to expand
            the table into runs; default the last of ``notebooks``.
        extra_outputs: outputs that notebook trains for every variant beyond the rows' own (Table I's notebook
            03 also reports the teacher).
        switches: ``{notebook parameter: output}``: the output is left out when the parameter is false
            (``RUN_BASELINE: baseline``).
        spec_file: the spec's file when it is not ``configs/tables/<spec>.yaml`` (a method package of its own
            ships its specs; absolute or relative to the repository root).
    """

    name: str
    spec: str
    notebooks: tuple[str, ...]
    plan_notebook: str | None = None
    extra_outputs: tuple[str, ...] = ()
    switches: Mapping[str, str] = field(default_factory=dict)
    spec_file: str | None = None

    def __post_init__(self) -> None:
        if self.plan_notebook is not None and self.plan_notebook not in self.notebooks:
            raise ValueError(f"table {self.name!r}: plan_notebook {self.plan_notebook!r} is not one of its notebooks "
                             f"{list(self.notebooks)}")

    @property
    def planned_by(self) -> str:
        """The notebook whose parameters the plan of runs reads."""
        if not self.notebooks:
            raise ValueError(f"table {self.name!r}: no notebook makes it, so neither `make reproduce` nor the plan of "
                             "runs can (make it with lib.workflow.run_table)")
        return self.plan_notebook or self.notebooks[-1]

    def outputs_for(self, params: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        """``(extra outputs, skipped outputs)`` of the table's notebook run with ``params``."""
        return list(self.extra_outputs), [o for p, o in self.switches.items() if not params.get(p, True)]


@dataclass(frozen=True)
class MethodsRow:
    """A method's row in the methods-side-by-side table (``configs/methods_table.yaml`` gives the title, notes and
    reference row): ``output`` of the method's ``variant``, compared with the paper-numbers row ``paper`` /
    ``paper_table`` / ``paper_row`` (``None``: a row of ours only)."""

    label: str
    output: str
    variant: str = "default"
    paper: str | None = None
    paper_table: str | None = None
    paper_row: str | None = None


@dataclass(frozen=True)
class Method:
    """A re-ID method: its configuration class, stages, outputs, test-time hooks and place in the workbook.

    Attributes:
        name: the registry name (also the first level of its run folders).
        config_class: the typed configuration, a subclass of :class:`MethodConfig`.
        stages: the stage graph, in dependency order.
        outputs: ``output -> (stage, metrics key)``, e.g. ``'pshrnet': ('phase2', 'lr')``. A metrics key ``hr`` is
            an HR-query result (beside the LR-query one), which the explorer and the sweep leave out.
        paper_config: the configuration file holding the paper's setting (what differences are measured against).
        not_compared: configuration keys (dotted prefixes) that are never differences from the paper: execution
            settings and sections the paper has no counterpart for.
        query_path: :class:`QueryPath` (``None``: the methods table cannot price its queries).
        matcher: :class:`MatcherHook` (``None``: no explorer, sweep or ``lib.rank`` for it).
        weights_keys: ``(backbone key, weights key)`` pairs of the configuration: where a reproduction's
            per-backbone weight files (the notebooks' ``WEIGHTS``) are applied.
        headline: the output the explorer shows first (default: the first output).
        sweep_outputs: ``(variant/output, …)`` the resolution sweep shows by default (default: the headline's
            default variant).
        tables: the method's tables in the workbook (:class:`WorkbookTable`).
        methods_rows: its rows in the methods-side-by-side table.
        notebook_params: ``{NAME: type}`` of notebook parameters its notebooks add to the shared ones
            (:func:`lib.workflow.param_types`; the type strings of :data:`lib.workflow.PARAM_TYPES`).
        config_dir: the folder of its profile configurations (``<profile>.yaml``; default ``configs/<name>``),
            where the methods table finds the configuration of the notebook's profile.
    """

    name: str
    config_class: type
    stages: dict[str, Stage]
    outputs: dict[str, tuple[str, str]]
    paper_config: str
    not_compared: tuple[str, ...] = field(default=("test.batch_size",))
    query_path: QueryPath | None = None
    matcher: MatcherHook | None = None
    weights_keys: tuple[tuple[str, str], ...] = (("model.backbone", "model.weights"),)
    headline: str | None = None
    sweep_outputs: tuple[str, ...] | None = None
    tables: tuple[WorkbookTable, ...] = ()
    methods_rows: tuple[MethodsRow, ...] = ()
    notebook_params: Mapping[str, str] = field(default_factory=dict)
    config_dir: str | None = None

    def __post_init__(self) -> None:
        where = f"method {self.name!r}"
        if not (isinstance(self.config_class, type) and issubclass(self.config_class, MethodConfig)):
            raise TypeError(f"{where}: config_class must subclass lib.methods.MethodConfig (seed, data, test, "
                            f"runtime), found {self.config_class!r}")
        for o, (stage, _) in self.outputs.items():
            if stage not in self.stages:
                raise ValueError(f"{where}: output {o!r} names stage {stage!r}; its stages: {', '.join(self.stages)}")
        for s in self.stages.values():
            missing = [d for d in s.deps if d not in self.stages]
            if missing:
                raise ValueError(f"{where}: stage {s.name!r} depends on unknown stage(s) {missing}")
        if self.headline is not None and self.headline not in self.outputs:
            raise ValueError(f"{where}: headline {self.headline!r} is not one of its outputs {list(self.outputs)}")
        for label in self.sweep_outputs or ():
            if label.count("/") != 1 or label.split("/")[1] not in self.outputs:
                raise ValueError(f"{where}: sweep output {label!r}: expected 'variant/output' with one of its outputs "
                                 f"{list(self.outputs)}")
        for r in self.methods_rows:
            if r.output not in self.outputs:
                raise ValueError(f"{where}: methods-table row {r.label!r} names output {r.output!r}; its outputs: "
                                 f"{list(self.outputs)}")

    @property
    def configs(self) -> str:
        """The folder of its profile configurations (:attr:`config_dir`, default ``configs/<name>``)."""
        return self.config_dir or f"configs/{self.name}"

    @property
    def headline_output(self) -> str:
        return self.headline or next(iter(self.outputs))

    @property
    def default_sweep(self) -> tuple[str, ...]:
        """The sweep's default labels, ``method/variant/output``."""
        return tuple(f"{self.name}/{v}" for v in (self.sweep_outputs or (f"default/{self.headline_output}",)))

    def stages_for(self, outputs: Iterable[str]) -> list[str]:
        """The stages (dependencies first) needed for ``outputs``; unknown outputs list the method's."""
        need: list[str] = []

        def add(stage: str) -> None:
            for d in self.stages[stage].deps:
                add(d)
            if stage not in need:
                need.append(stage)
        for o in outputs:
            if o not in self.outputs:
                raise KeyError(f"method {self.name!r} has no output {o!r}; its outputs: {', '.join(self.outputs)}")
            add(self.outputs[o][0])
        return [s for s in self.stages if s in need]

    def can_rebuild(self, stage: str) -> bool:
        """Whether :meth:`modules` can rebuild ``stage``'s modules (its stage has a ``modules`` hook)."""
        return stage in self.stages and self.stages[stage].modules is not None

    def modules(self, stage: str, cfg: Any, identity: Mapping[str, Any],
                deps: Mapping[str, RunResult] | None = None) -> dict[str, nn.Module]:
        """``stage``'s modules, untrained, as its ``build`` makes them (the stage's ``modules`` hook), from the run's
        rebuilt configuration, recorded identity and loaded dependency runs — for :func:`lib.inference.load_run`."""
        if stage not in self.stages:
            raise KeyError(f"method {self.name!r} has no stage {stage!r}; its stages: {', '.join(self.stages)}")
        hook = self.stages[stage].modules
        if hook is None:
            raise ValueError(f"method {self.name!r}: stage {stage!r} has no `modules` hook (lib.core.runs.Stage), so "
                             "its finished runs cannot be loaded again")
        return hook(cfg, identity, dict(deps or {}))
