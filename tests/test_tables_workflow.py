"""Tables from per-variant summaries (lib/results), notebook parameters → configuration, dataset discovery, the
differences from the paper's setting, and an end-to-end ablation table on tiny synthetic data."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from lib.core import ConfigError
from lib.methods import METHODS, differences, load_config
from lib.results import build_table, load_summaries, load_table_spec, summary_path, write_summary, write_table
from lib.utils import repo_root
from lib.workbook import load_profile, notebook_parameters
from lib.workflow import DATA_DEFAULTS, experiment_config, find_datasets, splits_to_run

NB = repo_root() / "notebooks"
PSHRNET = METHODS.get("pshrnet")
PAPER = "configs/pshrnet/paper.yaml"


@dataclass
class _DS:
    """What a summary records of a dataset."""

    name: str
    eval_protocol: str

    def provenance(self) -> dict:
        return {"dataset": self.name, "manifest": "/m.json", "manifest_sha256": "cd" * 32, "file_list_sha256": "ab" * 32,
                "mlr_seed": 0}


def _per_split(r1: float, n: int) -> list[dict]:
    return [{"rank1": r1 + d, "rank5": r1 + 0.1, "rank10": r1 + 0.2, "rank20": r1 + 0.3, "mAP": r1 - 0.05, "mINP": 0.1,
             "cmc": [r1 + d] + [1.0] * 19} for d in ([0.0] if n == 1 else [-0.02, 0.0, 0.02][:n])]


def _summary(folder: Path, dataset: str, protocol: str, r1: float, n: int = 3, variant: str = "default",
             outputs: tuple[str, ...] = ("pshrnet",), diffs: tuple[str, ...] = ("data.height 64 (paper 256)",)) -> Path:
    cfg = load_config(PAPER)
    return write_summary(folder, profile="t", method="pshrnet", variant=variant, overrides={}, config_file=PAPER, cfg=cfg,
                         ds=_DS(dataset, protocol), splits=list(range(n)),
                         per_split={o: _per_split(r1, n) for o in outputs}, runs={k: {} for k in range(n)},
                         differences=list(diffs))


def _table1(folder: Path):
    return build_table(load_table_spec("table1"), folder, "t")


def test_table1_without_runs_lists_every_dataset_missing(tmp_path):
    long, md = _table1(tmp_path)
    assert "**Missing** (no run in this profile): MLR-Market-1501, MLR-CUHK03, MLR-VIPeR, MLR-DukeMTMC-reID, CAVIAR." in md
    assert "No reproduced row yet: run the notebook `03_phase2_pseudo_siamese`" in md
    body = [l for l in md.splitlines() if l.startswith("| ") and not l.startswith("| Method")]
    assert len(body) == 25  # the paper's 25 rows; no reproduced or Δ row
    assert set(long.source) == {"paper"} and "| **PS-HRNet (Ours)** | 91.5 |" in md


def test_table1_reproduced_row_and_delta(tmp_path):
    path = _summary(tmp_path, "viper", "single_shot", 0.50)
    assert path == summary_path(tmp_path, "pshrnet", "viper", "default") == tmp_path / "results" / "pshrnet" / "viper" / "default.json"
    rec = json.loads(path.read_text())
    assert rec["outputs"]["pshrnet"]["aggregate"]["rank1"]["mean"] == pytest.approx(0.50)
    assert rec["outputs"]["pshrnet"]["aggregate"]["rank1"]["std"] == pytest.approx(0.02)  # sample std, ddof=1
    _summary(tmp_path, "synthetic", "multi_shot", 0.30, n=1)
    assert set(load_summaries(tmp_path)) == {("pshrnet", "default", "viper"), ("pshrnet", "default", "synthetic")}
    long, md = _table1(tmp_path)
    r = long[(long.source == "reproduced") & (long.dataset == "viper") & (long.metric == "rank1")].iloc[0]
    assert r.value == pytest.approx(50.0) and r.paper == pytest.approx(48.7) and r.delta == pytest.approx(1.3)
    assert r.num_splits == 3 and r["std"] == pytest.approx(2.0)
    assert "| **PS-HRNet (reproduced)** |" in md and "50.0 ± 2.0" in md and "+1.3" in md
    assert "| Δ PS-HRNet (reproduced) (reproduced − paper) |" in md
    assert "MLR-VIPeR" not in md.split("**Missing**")[1].splitlines()[0]
    assert "synthetic mAP" in md  # not in the paper, multi-shot: an extra column with mAP
    syn = long[(long.source == "reproduced") & (long.dataset == "synthetic") & (long.metric == "rank1")].iloc[0]
    assert syn.value == pytest.approx(30.0) and syn.paper != syn.paper  # no paper number to compare with (NaN)
    assert "data.height 64 (paper 256)" in md  # differences stated above the table
    assert "**viper**: manifest `/m.json`" in md
    csv, mdp = write_table(long, md, tmp_path, "table1")
    assert csv == tmp_path / "tables" / "table1.csv"
    assert csv.read_text().startswith("row,source,variant,dataset,metric,value,std,num_splits,paper,delta")
    assert mdp.read_text() == md


def test_data_defaults_match_notebook01():
    declared = notebook_parameters(NB / "01_dataset_synthesis.ipynb")
    assert {k: declared[k] for k in DATA_DEFAULTS} == DATA_DEFAULTS


EXPERIMENT_NOTEBOOKS = ("02_phase1_hr_reid", "03_phase2_pseudo_siamese", "05_ablation_losses", "06_ablation_ps_components")


@pytest.mark.parametrize("profile", ["tiny", "cpu", "paper"])
def test_notebooks_02_and_03_agree_on_the_teacher(profile):
    """Notebook 03 (and the ablations 05, 06) must find the phase-1 run notebook 02 made: the same configuration
    from each (a run's identity is what its stage reads from the configuration; test_engine checks that a phase-2
    setting never enters phase 1's)."""
    sections = load_profile(profile)
    cfgs = {}
    for stem in EXPERIMENT_NOTEBOOKS:
        params = notebook_parameters(NB / f"{stem}.ipynb") | sections[stem]
        cfgs[stem] = experiment_config(params)
        assert params["CONFIG"] == f"configs/pshrnet/{'tiny' if profile == 'tiny' else profile}.yaml", stem
    first = cfgs["02_phase1_hr_reid"]
    for stem, cfg in cfgs.items():
        assert cfg == first, (profile, stem)
        assert sections[stem].get("SPLITS") == sections["02_phase1_hr_reid"].get("SPLITS"), (profile, stem)


def test_experiment_config_mapping():
    params = {"CONFIG": "configs/pshrnet/tiny.yaml", "SEED": 3,
              "OVERRIDES": {"model.backbone": "resnet50", "data.num_identities": 8, "data.num_instances": 2,
                            "loss.margin": 0.3, "loss.ps_components": ["logits", "seq5"], "phase2.nesterov": True,
                            "runtime.max_steps_per_epoch": 0}}
    cfg = experiment_config(params)
    assert (cfg.model.backbone, cfg.data.num_identities, cfg.data.num_instances) == ("resnet50", 8, 2)
    assert cfg.seed == 3 and cfg.phase2.nesterov and not cfg.phase1.nesterov
    assert cfg.runtime.max_steps_per_epoch == 0 and cfg.runtime.trainer_kwargs()["max_steps_per_epoch"] is None
    assert cfg.loss.margin == 0.3 and cfg.loss.ps_components == ("seq5", "logits")
    # the tiny file itself: inherited from paper.yaml except what it names
    tiny = experiment_config({})
    assert tiny.model.backbone == "mobilenet_v2" and tiny.data.size == (64, 32) and tiny.phase1.epochs == 3
    assert tiny.loss == load_config(PAPER).loss and tiny.phase2.losses == load_config(PAPER).phase2.losses
    # a variant's overrides win over the notebook's
    assert experiment_config(params, {"loss.margin": 0.2}).loss.margin == 0.2
    with pytest.raises(ConfigError, match=r"tiny\.yaml .*unknown name 'seq9'"):
        experiment_config({"OVERRIDES": {"loss.ps_components": ["seq9"]}})
    with pytest.raises(ConfigError, match=r"unknown key 'phase2\.lrr'; valid keys of phase2: optimizer, epochs, lr"):
        experiment_config({"OVERRIDES": {"phase2.lrr": 1.0}})
    with pytest.raises(ConfigError, match="config file not found: .*nope.yaml"):
        experiment_config({"CONFIG": "configs/pshrnet/nope.yaml"})
    with pytest.raises(TypeError, match="OVERRIDES must be dict"):
        experiment_config({"OVERRIDES": [("phase2.lr", 1.0)]})


@pytest.mark.parametrize("config", ["tiny", "cpu", "paper"])
def test_baseline_budget_is_both_phases(config):
    cfg = load_config(f"configs/pshrnet/{config}.yaml")
    assert cfg.baseline.epochs == cfg.phase1.epochs + cfg.phase2.epochs, config


def test_differences_are_computed_from_the_config():
    paper = load_config(PAPER)
    assert differences(PSHRNET, paper, paper) == []
    cpu = experiment_config(load_profile("cpu")["03_phase2_pseudo_siamese"])
    diffs = differences(PSHRNET, cpu, paper)
    text = "; ".join(diffs)
    for needle in ("model.backbone mobilenet_v2 (paper hrnet_w32)", "data.height 128 (paper 256)", "sr.depth 8 (paper 20)",
                   "phase1.epochs 30 (paper 70)", "model.weights deep-sort-mobilenetv2 (paper hub)",
                   "phase1.optimizer adam (paper sgd)", "test.feature feat (paper concat)", "phase1.milestones 20 (paper none)"):
        assert needle in diffs, (needle, text)
    # execution settings and sections without a paper counterpart are never differences
    assert not any(d.startswith(("runtime.", "baseline.", "test.batch_size")) for d in diffs), text
    ours = load_config(PAPER, {"runtime.precision": "fp32", "runtime.device": "cpu", "test.batch_size": 8,
                               "baseline.epochs": 1, "loss.margin": 0.3})
    assert differences(PSHRNET, ours, paper) == ["loss.margin 0.3 (paper 0.1)"]
    # a variant is compared with the paper + the same variant: its own overrides are not differences
    variant = {"phase2.losses.ps": 0.0}
    assert differences(PSHRNET, load_config(PAPER, variant), load_config(PAPER, variant)) == []
    assert differences(PSHRNET, load_config(PAPER, variant), paper) == ["phase2.losses.ps 0.0 (paper 0.5)"]


def test_epochs_cut_short_are_a_difference_from_the_paper():
    paper = load_config(PAPER)
    ours = load_config(PAPER, {"runtime.max_steps_per_epoch": 2})
    assert any(d.startswith("runtime.max_steps_per_epoch 2") for d in differences(PSHRNET, ours, paper))


def test_differences_list_each_changed_setting_once():
    paper = load_config(PAPER)
    authors = load_config(PAPER, {"phase2.module_lr": {}})  # the authors' code: VDSR-CA at the re-ID rate
    assert differences(PSHRNET, authors, paper) == ["phase2.module_lr.sr — (paper 0.00085)"]


def test_splits_to_run():
    class DS:
        name, num_splits = "market1501", 1

    assert splits_to_run({"SPLITS": [0, 1, 2]}, DS()) == [0]
    with pytest.raises(ValueError, match="has splits 0..0"):
        splits_to_run({"SPLITS": [3]}, DS())


def test_find_datasets(fake_viper, tmp_path):
    (tmp_path / "Market-1501").mkdir()  # present but not a Market layout: reported, not used
    found, missing = find_datasets(tmp_path)
    assert list(found) == ["viper"] and found["viper"] == fake_viper
    assert "not readable as market1501" in missing["market1501"]
    assert "none of" in missing["caviar"]


def test_baseline_rows_get_no_delta(tmp_path):
    _summary(tmp_path, "viper", "single_shot", 0.50, outputs=("pshrnet", "baseline"))
    long, md = _table1(tmp_path)
    base = long[long.row.str.startswith("Bicubic")]
    assert len(base) and base.delta.isna().all() and base.paper.isna().all()
    assert (base.value.dropna() > 0).all() and "| Bicubic + ID baseline (reproduced) |" in md
    assert "Δ Bicubic" not in md


@pytest.mark.slow
def test_ablation_table_end_to_end(tmp_path):
    """Table II's variants on tiny synthetic data: one summary per variant, one shared teacher, the table with each
    row's effect against the reference variant."""
    from lib.workflow import make_table, run_table

    params = {"PROFILE": "t", "OUTPUT_ROOT": str(tmp_path), "DATASETS": ["synthetic"], "SEED": 0, "SPLITS": [0],
              "CONFIG": "configs/pshrnet/tiny.yaml", "VARIANTS": ["sr_id", "sr_id_ps"],
              "OVERRIDES": {"phase1.epochs": 1, "phase2.epochs": 1, "runtime.max_steps_per_epoch": 2,
                            "runtime.device": "cpu", "test.num_repeats": 1, "sr.depth": 3, "sr.width": 8},
              # notebook 01's dataset keys: the smallest synthetic set the splits allow
              "SYN_NUM_IDENTITIES": 12, "SYN_HEIGHT": 64, "SYN_WIDTH": 32}
    exp, spec, rows = run_table(params, "table2", progress=False)
    assert [r.variant for r in rows] == ["sr_id", "sr_id_ps"] and exp.method == "pshrnet"
    out = tmp_path / "t"
    for v in ("sr_id", "sr_id_ps"):
        rec = json.loads(summary_path(out, "pshrnet", "synthetic", v).read_text())
        assert rec["variant"] == v and set(rec["outputs"]) == {"pshrnet"} and rec["splits"] == [0]
        assert rec["protocol"] == "multi_shot" and 0 <= rec["outputs"]["pshrnet"]["aggregate"]["rank1"]["mean"] <= 1
        assert rec["overrides"] == spec.variants[v] and rec["config"]["seed"] == 0
        assert "1 of" not in " ".join(rec["differences"])  # synthetic data has one split
    runs = {v: exp.runs[(v, "synthetic", 0)] for v in ("sr_id", "sr_id_ps")}
    assert runs["sr_id"]["phase1"].run_dir == runs["sr_id_ps"]["phase1"].run_dir  # one teacher
    assert runs["sr_id"]["phase2"].run_dir != runs["sr_id_ps"]["phase2"].run_dir
    assert "baseline" not in runs["sr_id"]  # only the stages the rows need
    assert exp.summaries[("sr_id", "synthetic")]["differences"] == exp.summaries[("sr_id_ps", "synthetic")]["differences"]
    for v in ("sr_id", "sr_id_ps"):
        link = out / "runs" / "pshrnet" / "synthetic" / "variants" / v / "split0" / "phase2"
        assert link.resolve() == runs[v]["phase2"].run_dir.resolve()
    long, md, (csv, mdp, full) = make_table(params, "table2")
    assert mdp == out / "tables" / "table2.md" and mdp.read_text() == md
    # the compact view: one headline metric, a row per (dataset, reproduced row); everything else in table2_full.md
    assert full == out / "tables" / "table2_full.md" and "| Method |" in full.read_text() and "| Method |" not in md
    assert "| Dataset | Row | Best competitor in the paper |" in md and "| synthetic | SR+ID+PS |" in md
    assert "table2_full.md" in md
    ours = long[long.source == "reproduced"]
    assert set(ours.row) == {"SR+ID", "SR+ID+PS"} and set(ours.dataset) == {"synthetic"}
    # the effect against the reference row, with its interval from the runs' per-query records; the CSV has the bounds
    assert "Effect of each variant" in md and "| SR+ID+PS | +0.0 |" not in md
    assert re.search(r"\| SR\+ID \| −3\.9 \| [+−]\d+\.\d \[[+−]\d+\.\d, [+−]\d+\.\d\]", md), md
    eff = long[long.source == "effect"]
    assert list(eff.row) == ["SR+ID"] and set(eff.reference) == {"SR+ID+PS"}
    assert (eff.effect_low <= eff.value).all() and (eff.value <= eff.effect_high).all()
    sr_id = ours[ours.row == "SR+ID"].value.iloc[0] - ours[ours.row == "SR+ID+PS"].value.iloc[0]
    assert abs(eff.value.iloc[0] - sr_id) < 1e-6  # multi-shot: the per-query mean is the table's Rank-1
    for v in ("sr_id", "sr_id_ps"):  # every run keeps its per-query records, named by the summary
        src = exp.summaries[(v, "synthetic")]["outputs"]["pshrnet"]["per_split"][0]["source"]
        pq = json.loads((out / src["run"] / "per_query.json").read_text())["outputs"][src["output"]]
        assert len(pq["index"]) == len(pq["pid"]) == len(pq["rank1"]) == len(pq["ap"]) > 0
    assert "**Substitution**" in md  # the paper's Table II is on MLR-Market-1501


@pytest.mark.slow
def test_summary_names_the_configuration_file_used(tmp_path):
    from lib.workflow import run_experiment

    params = {"PROFILE": "t", "OUTPUT_ROOT": str(tmp_path), "DATASETS": ["synthetic"], "SPLITS": [0],
              "OVERRIDES": {"phase1.epochs": 1, "runtime.max_steps_per_epoch": 1, "runtime.device": "cpu",
                            "test.num_repeats": 1},
              "SYN_NUM_IDENTITIES": 12, "SYN_HEIGHT": 64, "SYN_WIDTH": 32}
    exp = run_experiment(params, {"default": {}}, {"default": ["teacher_lr"]}, progress=False)
    rec = exp.summaries[("default", "synthetic")]
    assert set(rec["outputs"]) == {"teacher_lr"} and set(exp.runs[("default", "synthetic", 0)]) == {"phase1"}
    assert rec["config_file"] == "configs/pshrnet/tiny.yaml"


def test_rows_measured_on_different_splits_are_flagged(tmp_path):
    """A table whose rows come from different splits (a single-split rerun beside a full summary) says so."""
    spec = load_table_spec("table2")
    _summary(tmp_path, "viper", "single_shot", 0.50, n=3, variant="sr_id")
    _summary(tmp_path, "viper", "single_shot", 0.40, n=3, variant="sr_id_ps")
    _, md = build_table(spec, tmp_path, "t")
    assert "Not like for like" not in md and md.count("- **viper**: manifest") == 1 and "splits [0, 1, 2]" in md
    _summary(tmp_path, "viper", "single_shot", 0.40, n=1, variant="sr_id_ps")
    _, md = build_table(spec, tmp_path, "t")
    assert "**Not like for like on viper**" in md
    assert "- **viper** (rows SR+ID): manifest" in md and "splits [0, 1, 2]" in md
    assert "- **viper** (rows SR+ID+PS): manifest" in md and "splits [0]," in md


def test_a_table_of_one_method_with_another_methods_configuration_names_both(tmp_path):
    """`run_table.py ftwa_table2 --config configs/pshrnet/tiny.yaml`: an error naming the configuration's method, the
    table's and where its configurations are (before: "unknown key 'raft'" from the first FTWA variant)."""
    from lib.workflow import table_request

    params = {"PROFILE": "t", "OUTPUT_ROOT": str(tmp_path), "DATASETS": ["synthetic"], "SPLITS": [0]}
    with pytest.raises(ValueError, match=r"CONFIG \(--config\) 'configs/pshrnet/tiny.yaml' is a 'pshrnet' "
                                         r"configuration; table 'ftwa_table2' is a table of 'ftwa' \(give one of "
                                         r"configs/ftwa/\)"):
        table_request({**params, "CONFIG": "configs/pshrnet/tiny.yaml"}, "ftwa_table2")
    with pytest.raises(ValueError, match=r"'ftwa' configuration; table 'table2' is a table of 'pshrnet'"):
        table_request({**params, "CONFIG": "configs/ftwa/tiny.yaml"}, "table2")
    assert table_request({**params, "CONFIG": "configs/ftwa/tiny.yaml"}, "ftwa_table2").spec.method == "ftwa"
    with pytest.raises(ValueError, match=r"CONFIG \(--config\) 'configs/pshrnet/tiny.yaml' is a 'pshrnet'"):
        table_request(params, "ftwa_table1")  # no CONFIG: the default one is named, not None
