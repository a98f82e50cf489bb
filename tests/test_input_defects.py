"""Bad input found by trying it (issue #6 §3): each case gives a clear error or does the right thing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tests.conftest import write_image
from lib.data import MLRConfig, MLRDataset, build_mlr
from lib.data.mlr_build import main as mlr_main
from lib.data.records import ImageReadError
from lib.core import ConfigError
from lib.engine import NonFiniteLossError, OptimConfig, Trainer, resolve_precision
from lib.methods import load_config
from lib.methods.pshrnet.config import DataConfig
from lib.metrics import evaluate_ranking
from lib.workbook import load_profile, resolve_run
from lib.workflow import experiment_config, validate_params

REPO = Path(__file__).resolve().parents[1]
CLI_SMALL = ["--num-train-ids", "6", "--num-test-ids", "6"]
SMALL = {"num_train_ids": 6, "num_test_ids": 6}  # fake_viper has 12 identities


# ---------------------------------------------------------------- 1. CSV paths outside the dataset folder
def _csv(tmp_path: Path, rows: list[tuple[str, int, int]]) -> Path:
    """A CSV dataset with the given LR-camera rows plus one HR camera (2) holding the gallery."""
    for pid in sorted({r[1] for r in rows}):
        write_image(tmp_path / "data" / "hr" / f"h{pid}.png", (32, 16), seed=100 + pid)
        rows = rows + [(f"hr/h{pid}.png", pid, 2)]
    csv = tmp_path / "data" / "list.csv"
    csv.write_text("path,pid,camid\n" + "".join(f"{p},{pid},{cam}\n" for p, pid, cam in rows))
    return csv


def test_csv_paths_outside_never_write_outside_the_output_folder(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    rows = []
    for pid in range(4):
        a = write_image(elsewhere / f"abs_{pid}.png", (32, 16), seed=pid)  # absolute path
        write_image(tmp_path / "up" / f"up_{pid}.png", (32, 16), seed=10 + pid)  # ../ path
        rows += [(str(a), pid, 0), (f"../up/up_{pid}.png", pid, 1)]
    csv = _csv(tmp_path, rows)
    before = {p for p in tmp_path.rglob("*") if p.is_file()}
    out = tmp_path / "out"
    ds = MLRDataset.load(build_mlr(csv, out, MLRConfig("csv", lr_cameras=(0, 1)), progress=False))
    created = {p for p in tmp_path.rglob("*") if p.is_file()} - before
    assert created and all(out in p.parents for p in created), sorted(map(str, created - {p for p in created if out in p.parents}))
    lr = [im.lr_path for im in ds.images if im.camid != 2]
    assert all(p is not None and p.is_file() and ds.root / "lr" in p.parents and out in p.parents for p in lr)
    assert len(set(lr)) == len(lr)


def test_csv_rows_with_the_same_stem_get_distinct_lr_files(tmp_path):
    rows = []
    for pid in range(4):
        for ext in ("png", "jpg"):
            write_image(tmp_path / "data" / "img" / f"p{pid}.{ext}", (32, 16), seed=pid * 7 + len(ext))
            rows.append((f"img/p{pid}.{ext}", pid, 0 if ext == "png" else 1))
    csv = _csv(tmp_path, rows)
    ds = MLRDataset.load(build_mlr(csv, tmp_path / "out", MLRConfig("csv", lr_cameras=(0, 1)), progress=False))
    names = [im.lr_path.name for im in ds.images if im.camid != 2]
    assert len(set(names)) == 8 and "p0.png.png" in names and "p0.jpg.png" in names
    hashes = {im.lr_path.read_bytes() for im in ds.images if im.camid != 2}
    assert len(hashes) == 8  # none overwrote another


# ---------------------------------------------------------------- 2. profiles and output folders
def _profile(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "myprof.yaml"
    p.write_text(text)
    return p


def test_profile_without_profile_key_writes_under_its_own_name(tmp_path):
    prof = _profile(tmp_path, "02_phase1_hr_reid:\n  SEED: 1\n")
    _, params, out_dir = resolve_run(REPO / "notebooks" / "02_phase1_hr_reid.ipynb", str(prof))
    assert params["PROFILE"] == "myprof" and out_dir.parent.name == "myprof"
    # a notebook the profile has no section for (04 with profile viper) still gets the profile's name
    _, params, out_dir = resolve_run(REPO / "notebooks" / "04_table1.ipynb", "viper")
    assert params["PROFILE"] == "viper" and out_dir == REPO / "outputs" / "viper" / "notebooks"


def test_profile_naming_another_profile_is_an_error(tmp_path):
    prof = _profile(tmp_path, "_all:\n  PROFILE: tiny\n02_phase1_hr_reid: {}\n")
    with pytest.raises(ValueError, match="PROFILE must be the profile's own name 'myprof'"):
        resolve_run(REPO / "notebooks" / "02_phase1_hr_reid.ipynb", str(prof))


def test_output_root_is_where_notebooks_go(tmp_path):
    prof = _profile(tmp_path, f"02_phase1_hr_reid:\n  OUTPUT_ROOT: {tmp_path / 'elsewhere'}\n")
    _, params, out_dir = resolve_run(REPO / "notebooks" / "02_phase1_hr_reid.ipynb", str(prof))
    assert out_dir == tmp_path / "elsewhere" / "myprof" / "notebooks"
    _, params, out_dir = resolve_run(REPO / "notebooks" / "02_phase1_hr_reid.ipynb", str(prof), output_root=tmp_path / "o")
    assert out_dir == tmp_path / "o" / "myprof" / "notebooks" and params["OUTPUT_ROOT"] == str(tmp_path / "o")


# ---------------------------------------------------------------- 3. stale LR images on rebuild
def test_rebuild_notices_changed_sources_truncated_lr_config_change_and_tmp(fake_viper, tmp_path):
    out = tmp_path / "mlr"
    cfg = MLRConfig("viper", **SMALL)
    first = lambda ds: next(i for i in ds.images if i.lr_path is not None)  # noqa: E731
    ds = MLRDataset.load(build_mlr(fake_viper, out, cfg, progress=False))
    im = first(ds)
    old_lr = im.lr_path.read_bytes()
    ds.close()
    # a source image whose content changes under the same name
    write_image(im.hr_path, (48, 24), seed=12345, fmt="BMP")
    build_mlr(fake_viper, out, cfg, progress=False)
    im = first(MLRDataset.load(out))
    assert im.lr_path.read_bytes() != old_lr
    # a truncated LR file
    good = im.lr_path.read_bytes()
    im.lr_path.write_bytes(good[: len(good) // 2])
    build_mlr(fake_viper, out, cfg, progress=False)
    assert first(MLRDataset.load(out)).lr_path.read_bytes() == good
    # a killed build's staging folder and temporary file, then a rebuild with another configuration
    tmp_file = out / "builds" / ".staging-1-dead" / "lr" / "cam_a" / ".x.png.abc123.tmp"
    tmp_file.parent.mkdir(parents=True)
    tmp_file.write_bytes(b"partial")
    build_mlr(fake_viper, out, MLRConfig("viper", rates=(2,), **SMALL), progress=False)
    assert not tmp_file.exists() and not tmp_file.parents[2].exists()
    ds2 = MLRDataset.load(out)
    named = {i.lr_path for i in ds2.images if i.lr_path is not None}
    on_disk = {p.resolve() for p in (out / "builds").rglob("*.png") if p.is_file()}
    assert on_disk == named and all(i.r in (None, 2) for i in ds2.images)


def test_config_change_removes_the_old_lr_files(fake_csv, tmp_path):
    out = tmp_path / "mlr"
    first = MLRDataset.load(build_mlr(fake_csv, out, MLRConfig("csv", lr_cameras=(0,)), progress=False))
    old = {im.lr_path for im in first.images if im.lr_path is not None}
    first.close()  # no job uses the first build any more: the next build removes it
    second = MLRDataset.load(build_mlr(fake_csv, out, MLRConfig("csv", lr_cameras=(1,)), progress=False))
    new = {im.lr_path for im in second.images if im.lr_path is not None}
    assert old and new and not old & new
    assert {p.resolve() for p in (out / "builds").rglob("*") if p.is_file() and p.name != "manifest.json"} == new
    notes = second.root / "lr" / "notes.txt"
    notes.write_text("a user's file")  # only our own .png / .tmp files are ever removed
    second.close()
    build_mlr(fake_csv, out, MLRConfig("csv", lr_cameras=(0,)), progress=False)
    assert notes.is_file() and not any(p.is_file() for p in notes.parent.rglob("*.png"))


# ---------------------------------------------------------------- 4. malformed manifests, invalid options
@pytest.mark.parametrize("edit", ["list", "no_images", "cut"])
def test_malformed_manifest_is_a_clear_error_and_is_rebuilt(fake_viper, tmp_path, edit):
    out = tmp_path / "mlr"
    path = build_mlr(fake_viper, out, MLRConfig("viper", **SMALL), progress=False)
    m = json.loads(path.read_text())
    if edit == "list":
        m = []
    elif edit == "no_images":
        del m["images"]
    else:
        m["images"] = m["images"][:5]
    path.write_text(json.dumps(m))
    with pytest.raises(ValueError, match="malformed") as e:
        MLRDataset.load(out)
    assert str(path) in str(e.value) and "rebuild" in str(e.value)
    build_mlr(fake_viper, out, MLRConfig("viper", **SMALL), progress=False)  # rebuilt, no traceback
    assert MLRDataset.load(out).num_splits == 10


def test_invalid_option_keeps_a_good_manifest(fake_viper, tmp_path, capsys):
    out = tmp_path / "mlr"
    assert mlr_main(["viper", str(fake_viper), str(out), "--quiet", *CLI_SMALL]) == 0
    good = (out / "manifest.json").read_bytes()
    assert mlr_main(["viper", str(fake_viper), str(out), "--seed", "-1", "--quiet", *CLI_SMALL]) == 2
    assert "seed" in capsys.readouterr().err
    assert (out / "manifest.json").read_bytes() == good


# ---------------------------------------------------------------- 5. parameter types
@pytest.mark.parametrize(
    "key,value,needle",
    [("SEED", "abc", "SEED must be int"), ("ANTIALIAS", "false", "ANTIALIAS must be bool"),
     ("RATES", [2.5], "RATES must be list[int]"), ("SPLITS", 0, "SPLITS must be list[int]"),
     ("OVERRIDES", [["phase1.lr", 1e-3]], "OVERRIDES must be dict"), ("VARIANTS", 3, "VARIANTS must be list[str] or str"),
     ("CONFIG", 3, "CONFIG must be str")],
)
def test_wrong_parameter_types_name_key_type_and_value(key, value, needle):
    with pytest.raises(TypeError, match=needle.replace("[", r"\[").replace("]", r"\]")) as e:
        validate_params({key: value})
    assert repr(value) in str(e.value)
    with pytest.raises(TypeError, match=key):
        experiment_config({key: value})


@pytest.mark.parametrize(
    "overrides,needle",
    [({"phase1.lr": "1e-3"}, "phase1.lr must be float, found str '1e-3' (YAML reads 1e-3 as a string: write 1.0e-3)"),
     ({"seed": "0"}, "seed must be int, found str '0' (a quoted number is a string in YAML: drop the quotes)"),
     ({"data.native_lr": "false"}, "data.native_lr must be bool, found str 'false'"),
     ({"data.rates": [2.5]}, "data.rates[0] must be int, found float 2.5"),
     ({"phase2.losses": {"ps": "high"}}, "phase2.losses.ps must be float, found str 'high'"),
     ({"phase1.lrr": 1.0}, "unknown key 'phase1.lrr'")],
)
def test_wrong_config_values_name_file_key_type_and_value(overrides, needle):
    """Model, data and training settings are configuration (CONFIG + OVERRIDES), checked as typed as the parameters."""
    with pytest.raises(ConfigError) as e:
        experiment_config({"CONFIG": "configs/pshrnet/tiny.yaml", "OVERRIDES": overrides})
    assert needle in str(e.value) and "tiny.yaml" in str(e.value)


@pytest.mark.parametrize("key,value", [("SEED", "abc"), ("ANTIALIAS", "false"), ("RATES", [2.5])])
def test_dataset_preparation_checks_types(fake_viper, tmp_path, key, value):
    from lib.workflow import prepare_dataset

    params = {"DATASET": "viper", "DATA_ROOT": str(fake_viper), "OUTPUT_ROOT": str(tmp_path), key: value}
    with pytest.raises(TypeError, match=key):
        prepare_dataset(params, progress=False)
    assert not (tmp_path / "tiny" / "mlr").exists()


def test_profile_with_wrong_type_fails_before_running(tmp_path):
    prof = _profile(tmp_path, "02_phase1_hr_reid:\n  SPLITS: 0\n")  # a number, not a list
    with pytest.raises(TypeError, match=r"SPLITS must be list\[int\], found int 0"):
        resolve_run(REPO / "notebooks" / "02_phase1_hr_reid.ipynb", str(prof))
    prof = _profile(tmp_path, "03_phase2_pseudo_siamese:\n  RUN_BASELINE: 'no'\n")
    with pytest.raises(TypeError, match="RUN_BASELINE must be bool"):
        resolve_run(REPO / "notebooks" / "03_phase2_pseudo_siamese.ipynb", str(prof))


def test_profile_with_wrong_config_value_fails_before_running(tmp_path):
    prof = _profile(tmp_path, "02_phase1_hr_reid:\n  OVERRIDES: {phase1.lr: 1e-3}\n")  # YAML 1.1: a string
    with pytest.raises(ValueError, match=r"phase1\.lr.*1\.0e-3"):
        resolve_run(REPO / "notebooks" / "02_phase1_hr_reid.ipynb", str(prof))


def test_mlr_config_rejects_non_integer_rates_and_string_antialias(fake_viper, tmp_path):
    for bad in (MLRConfig("viper", rates=(2.5,), **SMALL), MLRConfig("viper", antialias="false", **SMALL),
                MLRConfig("viper", seed=-1, **SMALL)):
        with pytest.raises(ValueError, match="MLRConfig"):
            build_mlr(fake_viper, tmp_path / "x", bad, progress=False)


def test_yaml_syntax_error_names_the_file(tmp_path):
    prof = _profile(tmp_path, "02_phase1_hr_reid:\n  SEED: [1\n")
    with pytest.raises(ValueError, match="myprof.yaml"):
        load_profile(str(prof))
    assert yaml  # the module is what raises underneath


# ---------------------------------------------------------------- 6. failures that used to surface late or not at all
def test_truncated_hr_image_fails_at_synthesis(fake_viper, tmp_path):
    hr = fake_viper / "cam_b" / "003_90.bmp"
    hr.write_bytes(hr.read_bytes()[:200])
    with pytest.raises(ImageReadError, match="003_90.bmp"):
        build_mlr(fake_viper, tmp_path / "mlr", MLRConfig("viper", **SMALL), progress=False)


class _ExplodingStep:
    def __init__(self, model):
        self.model = model

    def __call__(self, batch):
        loss = self.model(batch["x"]).sum() * 0 + 1e17
        return loss, {"ce": 1e17, "total": 1e17}, batch["x"].shape[0]


class _Data(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return {"x": torch.ones(2)}


def test_loss_that_explodes_without_inf_is_not_a_finished_run(tmp_path):
    from lib.data.samplers import RandomIdentitySampler

    model = torch.nn.Linear(2, 1)
    tr = Trainer(step_fn=_ExplodingStep(model), trainable={"m": model},
                 param_groups=[{"name": "reid", "params": list(model.parameters()), "lr": 0.1}], dataset=_Data(),
                 sampler=RandomIdentitySampler([0, 0, 1, 1, 2, 2, 3, 3], 2, 2), optim=OptimConfig(epochs=1),
                 precision=resolve_precision(torch.device("cpu"), "fp32", False), run_dir=tmp_path, run_config={}, progress=False)
    with pytest.raises(NonFiniteLossError, match=r"diverged at epoch 1, step 1: 1e\+17 exceeds max_loss=1e\+06"):
        tr.fit()
    assert not (tmp_path / "history.json").exists()


def test_too_small_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"input 7×5 is too small: .*height and width must be ≥ 32"):
        DataConfig(height=7, width=5)
    with pytest.raises(ConfigError, match=r"tiny\.yaml .*: data: input 7×5 is too small"):
        load_config("configs/pshrnet/tiny.yaml", {"data.height": 7, "data.width": 5})
    with pytest.raises(ConfigError, match=r"data: input 64×16 is too small"):
        experiment_config({"OVERRIDES": {"data.width": 16}})


def test_ranking_rejects_infinite_distances_and_out_of_range_pids():
    d = np.random.default_rng(0).random((3, 4))
    d[1, 2] = np.inf
    with pytest.raises(ValueError, match="infinite distance.*row 1"):
        evaluate_ranking(d, [0, 1, 2], [0, 1, 2, 3], [0, 0, 0], [1, 1, 1, 1])
    d[1, 2] = 0.5
    big = np.array([2**63, 1, 2, 3], dtype=np.uint64)
    with pytest.raises(ValueError, match="g_pids.*int64"):
        evaluate_ranking(d, [0, 1, 2], big, [0, 0, 0], [1, 1, 1, 1])
