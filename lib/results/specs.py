"""Table specs: a paper table as a list of variants of one method (``configs/tables/<name>.yaml``).

A spec names the paper table (registry keys), the method, the notebook that makes it, the *variants* (name →
dotted overrides of the profile's configuration) and the rows: which output of which variant reproduces which
paper row. A new table is a new spec, not new code. ``generate`` names a variant generator
(:data:`VARIANT_GENERATORS`) that ``VARIANTS = "all"`` expands to (Table VII: every non-empty subset of
{Seq1..Seq5, ℓc}, 63 variants).

``base`` holds overrides every variant of the table shares (Table IV: the ResNet-50 BNNeck network, no L_PS);
``keep_profile`` lists keys (of ``base`` or a variant) a profile may substitute: where the profile's configuration sets such a key
to something other than the method's paper configuration (the ``cpu`` profile's MobileNetV2 backbone), the
profile's value is kept and the table states the backbone actually used; the paper comparison still uses ``base``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.config import ConfigError, from_dict, load_config_file
from ..core.registry import Registry
from ..losses.pseudo_siamese import PS_COMPONENTS
from ..utils.paths import check_name, repo_root, resolve_path

__all__ = ["RowSpec", "TableSpec", "load_table_spec", "table_names", "spec_file", "method_table_specs", "VARIANT_GENERATORS", "TABLE_EXTRAS", "TABLES_DIR"]

TABLES_DIR = "configs/tables"
#: ``name -> () -> {variant: (label, overrides)}``.
VARIANT_GENERATORS = Registry("variant generator")
#: ``name -> (params, TableReport) -> result``: what a table makes besides itself (Table III: per-rate quality,
#: Fig. 5); :func:`lib.workflow.run_and_tabulate` runs a spec's ``extras`` and keeps their results by name.
TABLE_EXTRAS = Registry("table extra")


@dataclass(frozen=True)
class RowSpec:
    """One reproduced row: ``output`` of ``variant``, shown as ``label``; ``paper_row`` is the registry row id it
    reproduces (``None``: a row of ours only, e.g. the bicubic baseline); ``no_delta``: metrics whose paper value is
    not a target (Table III's Solo SR Rank-1, printed as 0.04), shown without Δ."""

    label: str
    variant: str
    output: str
    paper_row: str | None = None
    no_delta: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableSpec:
    """A table: ``paper``/``table`` (registry keys), ``method``, ``notebook`` (its stem), ``title``, ``rows``,
    ``variants`` (name → dotted overrides), ``reference`` (the variant the others are compared with, for
    ablations) or ``reference_row`` (a row label, where the reference is one output of a variant: Table I's
    baseline), ``generate`` (a :data:`VARIANT_GENERATORS` name for ``VARIANTS = "all"``), ``base`` /
    ``keep_profile`` (see the module docstring), ``notes`` (printed above the table) and ``protocol`` (replaces the
    default LR-query protocol line, e.g. for the HR-only Tables V and VI); ``hr_queries``: the table tests HR queries,
    so datasets whose test queries have no HR original (CAVIAR) are skipped, with the reason printed; ``extras``:
    names of :data:`TABLE_EXTRAS` run after the table."""

    name: str
    paper: str
    table: str
    method: str
    notebook: str
    title: str
    rows: tuple[RowSpec, ...]
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    reference: str | None = None
    reference_row: str | None = None
    generate: str | None = None
    base: dict[str, Any] = field(default_factory=dict)
    keep_profile: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    protocol: str | None = None
    hr_queries: bool = False
    extras: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for v in self.variants:  # a variant's name becomes a run folder and a summary file name
            check_name(v, "variants")
        missing = sorted({r.variant for r in self.rows} - set(self.variants))
        if missing:
            raise ValueError(f"rows use variants {missing} that 'variants' does not define")
        if self.reference is not None and self.reference not in self.variants:
            raise ValueError(f"reference {self.reference!r} is not a variant ({', '.join(self.variants)})")
        if self.reference_row is not None and self.reference_row not in {r.label for r in self.rows}:
            raise ValueError(f"reference_row {self.reference_row!r} is not a row label "
                             f"({', '.join(r.label for r in self.rows)})")
        if self.reference is not None and self.reference_row is not None:
            raise ValueError("give either 'reference' (a variant) or 'reference_row' (a row label), not both")
        stray = [k for k in self.keep_profile if k not in self.base and all(k not in v for v in self.variants.values())]
        if stray:
            raise ValueError(f"keep_profile names {stray}, which neither 'base' nor a variant sets")

    def resolve(self, overrides: Mapping[str, Any], profile: Mapping[str, Any], paper: Mapping[str, Any]
                ) -> dict[str, Any]:
        """``overrides`` less the ``keep_profile`` keys the profile substitutes (given the flattened ``profile`` and
        ``paper`` configurations: where their values differ, the profile's stays)."""
        return {k: v for k, v in overrides.items() if k not in self.keep_profile or profile.get(k) == paper.get(k)}

    def select(self, names: Sequence[str] | str) -> tuple[dict[str, dict[str, Any]], list[RowSpec]]:
        """``(variants, rows)`` for ``VARIANTS``: a list of variant names, or ``"all"`` (every variant, and the
        generated ones where the spec has a generator). Unknown names list the known ones."""
        variants, rows = dict(self.variants), list(self.rows)
        if names == "all":
            if self.generate:
                output = self.rows[0].output
                for v, (label, ov) in VARIANT_GENERATORS.get(self.generate)().items():
                    if v not in variants and ov not in variants.values():  # a named variant covers it
                        variants[v] = ov
                        rows.append(RowSpec(label=label, variant=v, output=output))
            return variants, rows
        if isinstance(names, str):
            raise ValueError(f"VARIANTS: expected a list of variant names or 'all', found {names!r}")
        unknown = [n for n in names if n not in variants]
        if unknown:
            raise ValueError(f"VARIANTS: unknown variant(s) {unknown} of {self.name}; known: {', '.join(variants)}"
                             + (" (or 'all')" if self.generate else ""))
        return {n: variants[n] for n in names}, [r for r in rows if r.variant in names]


def method_table_specs() -> dict[str, Path]:
    """``{spec name: file}`` of the tables registered methods keep outside ``configs/tables/``
    (:attr:`lib.methods.WorkbookTable.spec_file`: a method package of its own ships its table specs)."""
    from ..methods import METHODS

    return {t.spec: resolve_path(t.spec_file) for m in METHODS.in_order() for t in m.tables if t.spec_file}


def table_names() -> list[str]:
    """The table specs shipped under ``configs/tables/`` and those of registered methods' own files."""
    return sorted({p.stem for p in (repo_root() / TABLES_DIR).glob("*.yaml")} | set(method_table_specs()))


def spec_file(name: str) -> Path:
    """Where the spec ``name`` lives: a registered method's own file (:func:`method_table_specs`), else
    ``configs/tables/<name>.yaml``."""
    check_name(name, "table")
    return method_table_specs().get(name) or repo_root() / TABLES_DIR / f"{name}.yaml"


def load_table_spec(name: str) -> TableSpec:
    """The spec ``configs/tables/<name>.yaml`` or a registered method's own spec file (:func:`spec_file`; typed: a
    wrong key or type names the file and the key). ``name`` must be a plain name
    (:func:`~lib.utils.paths.check_name`): it is also the name of the table's output files."""
    path = spec_file(name)
    if not path.is_file():
        raise FileNotFoundError(f"table {name!r}: {path} does not exist; known tables: {', '.join(table_names())}")
    data = load_config_file(path)
    try:
        return from_dict(TableSpec, {"name": name, **data}, where=str(path))
    except ValueError as e:
        raise ConfigError(f"{path}: {e}") if not isinstance(e, ConfigError) else e from None


def _ps_label(components: Sequence[str]) -> str:
    return "{" + ", ".join("ℓc" if c == "logits" else c.capitalize() for c in components) + "}"


@VARIANT_GENERATORS.register("ps_subsets")
def ps_subsets() -> dict[str, tuple[str, dict[str, Any]]]:
    """Every non-empty subset C ⊆ A = {Seq1..Seq5, ℓc} of PS-HRNet Eq. (11): 63 variants ``ps_<names>``."""
    out = {}
    for k in range(1, len(PS_COMPONENTS) + 1):
        for combo in itertools.combinations(PS_COMPONENTS, k):
            name = "ps_" + "_".join("lc" if c == "logits" else c for c in combo)
            out[name] = (_ps_label(combo), {"loss.ps_components": list(combo)})
    return out


