"""Table I assembly, the parameters → configuration mapping, dataset discovery, profile reductions."""

from __future__ import annotations

import json

import pytest

from lib.pshrnet import PSHRNetConfig, phase_config, reductions
from lib.tables import table1, write_table
from lib.utils import repo_root
from lib.workbook import load_profile, notebook_parameters
from lib.workflow import DATA_DEFAULTS, find_datasets, pshrnet_config, splits_to_run

NB = repo_root() / "notebooks"


def _summary(folder, dataset, protocol, r1, std=0.02, n=3):
    agg = {m: {"mean": v, "std": std, "values": [v] * n} for m, v in
           {"rank1": r1, "rank5": r1 + 0.1, "rank10": r1 + 0.2, "rank20": r1 + 0.3, "mAP": r1 - 0.05, "mINP": 0.1}.items()}
    rec = {"profile": "t", "dataset": dataset, "manifest": "/m.json", "file_list_sha256": "ab" * 32, "manifest_sha256": "cd" * 32, "mlr_seed": 0,
           "protocol": protocol, "splits": list(range(n)), "seed": 0, "config": {}, "reductions": ["input 64×32 (paper 256×128)"],
           "methods": {"pshrnet": {"aggregate": agg, "per_split": []}}}
    (folder / "metrics").mkdir(parents=True, exist_ok=True)
    (folder / "metrics" / f"{dataset}_pshrnet.json").write_text(json.dumps(rec))


def test_table1_without_runs_lists_every_dataset_missing(tmp_path):
    long, md = table1(tmp_path, "t")
    assert "**Missing** (no run in this profile): MLR-Market-1501, MLR-CUHK03, MLR-VIPeR, MLR-DukeMTMC-reID, CAVIAR." in md
    body = [l for l in md.splitlines() if l.startswith("| ") and not l.startswith("| Method")]
    assert len(body) == 25 + 1  # the paper's 25 rows + the Δ row
    assert set(long.source) == {"paper"}


def test_table1_reproduced_row_and_delta(tmp_path):
    _summary(tmp_path, "viper", "single_shot", 0.50)
    _summary(tmp_path, "synthetic", "multi_shot", 0.30, n=1)
    long, md = table1(tmp_path, "t")
    r = long[(long.source == "reproduced") & (long.dataset == "viper") & (long.metric == "rank1")].iloc[0]
    assert r.value == pytest.approx(50.0) and r.paper == pytest.approx(48.7) and r.delta == pytest.approx(1.3)
    assert "| **PS-HRNet (reproduced)** |" in md and "50.0 ± 2.0" in md and "+1.3" in md
    assert "MLR-VIPeR" not in md.split("**Missing**")[1].splitlines()[0]
    assert "synthetic mAP" in md and "Not in the paper: synthetic" in md  # multi-shot: mAP column
    assert "input 64×32 (paper 256×128)" in md  # reductions stated above the table
    csv, mdp = write_table(long, md, tmp_path, "table1")
    assert csv.read_text().startswith("method,source,dataset,metric") and mdp.read_text() == md


def test_data_defaults_match_notebook01():
    declared = notebook_parameters(NB / "01_dataset_synthesis.ipynb")
    assert {k: declared[k] for k in DATA_DEFAULTS} == DATA_DEFAULTS


def test_notebooks_02_and_03_agree_on_the_teacher():
    """Notebook 03 must find the phase-1 run notebook 02 made: same phase-1 identity from both."""
    for profile in ("tiny", "cpu", "paper"):
        sections = load_profile(profile)
        p2 = notebook_parameters(NB / "02_phase1_hr_reid.ipynb") | sections["02_phase1_hr_reid"]
        p3 = notebook_parameters(NB / "03_phase2_pseudo_siamese.ipynb") | sections["03_phase2_pseudo_siamese"]
        assert phase_config(pshrnet_config(p2), "phase1") == phase_config(pshrnet_config(p3), "phase1"), profile


def test_pshrnet_config_mapping():
    cfg = pshrnet_config({"BACKBONE": "resnet50", "P": 8, "K": 2, "PHASE1_EPOCHS": 3, "PHASE2_EPOCHS": 4, "MARGIN": 0.3,
                          "PS_COMPONENTS": ["seq5", "logits"], "MAX_STEPS_PER_EPOCH": 0, "NESTEROV": True})
    assert (cfg.backbone, cfg.num_identities, cfg.num_instances) == ("resnet50", 8, 2)
    assert cfg.baseline.epochs == 7 and cfg.max_steps_per_epoch is None and cfg.phase2.nesterov
    assert cfg.loss.margin == 0.3 and cfg.loss.ps_components == ("seq5", "logits")
    with pytest.raises(ValueError, match="ps_components|valid"):
        pshrnet_config({"PS_COMPONENTS": ["seq9"]})


def test_reductions_are_computed_from_the_config():
    assert reductions(PSHRNetConfig(weights="hub"), 10, 10) == []
    red = reductions(pshrnet_config(load_profile("cpu")["03_phase2_pseudo_siamese"]), 3, 10)
    text = " ".join(red)
    for needle in ("backbone mobilenet_v2 (paper hrnet_w32)", "height 128 (paper 256)", "3 of 10 identity splits",
                   "sr_depth 8 (paper 20)", "phase1.epochs 30 (paper 70)", "weights deep-sort-mobilenetv2 (paper hub)"):
        assert needle in text, needle
    assert not any("precision" in r or "device" in r for r in red)  # numerics are recorded, not reductions
    assert "loss.margin 0.3 (paper 0.1)" in reductions(PSHRNetConfig(weights="hub").replace(
        loss=PSHRNetConfig().loss.__class__(margin=0.3)), 10, 10)


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
    _summary(tmp_path, "viper", "single_shot", 0.50)
    rec = json.loads((tmp_path / "metrics" / "viper_pshrnet.json").read_text())
    rec["methods"]["baseline"] = rec["methods"]["pshrnet"]
    (tmp_path / "metrics" / "viper_pshrnet.json").write_text(json.dumps(rec))
    long, _ = table1(tmp_path, "t")
    base = long[long.method.str.startswith("Bicubic")]
    assert len(base) and base.delta.isna().all() and base.paper.isna().all()
