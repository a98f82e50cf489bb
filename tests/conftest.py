"""Shared fixtures: tiny fake datasets in their release layouts, and the real data when present.

The ``slow`` marker (docs/tests.md#the-fast-loop): a test is slow when it took 3 s or more in the measured full run, or
trains, kills or resumes runs in other processes (DDP, worker pools, kill/resume), or starts a browser; those carry
``@pytest.mark.slow`` themselves. Every test that uses ``trained_profile`` is marked slow here, whatever its own time:
the fixture trains short runs of both methods (about a minute on 2 cores) before the first such test."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test`: TEST_WORKERS processes share the cores, one thread each
    os.environ.setdefault("OMP_NUM_THREADS", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def write_image(path: Path, size=(32, 16), seed: int = 0, fmt: str | None = None) -> Path:
    """A random RGB image of ``size = (height, width)``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format=fmt)
    return path


def pytest_configure(config):
    """In a pytest-xdist worker (`make test`), one torch thread whatever OMP_NUM_THREADS says: TEST_WORKERS processes
    share the cores (docs/tests.md)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """Tests that need ``trained_profile`` (directly or through another fixture) are slow: see the module docstring."""
    for item in items:
        if "trained_profile" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


_BROWSER_OUTCOMES: dict[str, str] = {}


def pytest_runtest_logreport(report):
    """Record the real-browser test's outcome (its call, or the setup that skipped it) for the summary line."""
    if report.nodeid.startswith("tests/test_browser.py::test_the_executed_explorer") and \
            (report.when == "call" or report.outcome != "passed"):
        reason = ""
        if report.skipped and isinstance(report.longrepr, tuple):
            reason = ": " + str(report.longrepr[2]).removeprefix("Skipped: ")
        _BROWSER_OUTCOMES[report.nodeid] = report.outcome + reason


def pytest_terminal_summary(terminalreporter):
    """One line saying whether the explorer was checked in a real browser (so CI's log shows passed, not skipped)."""
    for nodeid, outcome in _BROWSER_OUTCOMES.items():
        terminalreporter.write_line(f"real-browser check ({nodeid.split('::')[0]}): {outcome}")


@pytest.fixture
def fake_market(tmp_path) -> Path:
    """Market-1501 layout: 6 ids × 3 cams, train ids 1-3, test ids 4-6, one junk (-1) and one distractor (0)."""
    root = tmp_path / "Market-1501"
    k = 0
    for folder, pids in (("bounding_box_train", (1, 2, 3)), ("bounding_box_test", (0, 4, 5, 6)), ("query", (4, 5, 6))):
        for pid in pids:
            for cam in (1, 2, 3):
                if folder == "query" and cam != 1:
                    continue
                k += 1
                write_image(root / folder / f"{pid:04d}_c{cam}s1_{k:06d}_00.jpg", (32, 16), seed=k)
    write_image(root / "bounding_box_test" / "-1_c1s1_000000_00.jpg", (32, 16), seed=999)
    return root


@pytest.fixture
def fake_viper(tmp_path) -> Path:
    """VIPeR layout with 12 identities at 48 × 24."""
    root = tmp_path / "VIPeR"
    for pid in range(12):
        write_image(root / "cam_a" / f"{pid:03d}_45.bmp", (48, 24), seed=pid, fmt="BMP")
        write_image(root / "cam_b" / f"{pid:03d}_90.bmp", (48, 24), seed=100 + pid, fmt="BMP")
    return root


@pytest.fixture
def fake_caviar(tmp_path) -> Path:
    """CAVIAR4REID layout: ids 1-6 in both cameras (2 images each), ids 7-8 in camera 1 only."""
    root = tmp_path / "CAVIAR4REID"
    for pid in range(1, 9):
        idxs = [1, 2] + ([11, 12] if pid <= 6 else [])
        for i in idxs:
            size = (40, 20) if i <= 10 else (20, 10)
            write_image(root / "CAVIARa" / f"{pid:04d}{i:03d}.jpg", size, seed=pid * 100 + i)
    return root


@pytest.fixture
def fake_csv(tmp_path) -> Path:
    """A CSV-manifest dataset: 8 ids × 3 cams × 2 images, split train/test by identity."""
    root = tmp_path / "csvdata"
    rows = ["path,pid,camid,split"]
    for pid in range(8):
        for cam in range(3):
            for k in range(2):
                rel = f"images/{pid:04d}_c{cam}_{k:02d}.png"
                write_image(root / rel, (32, 16), seed=pid * 10 + cam * 3 + k)
                rows.append(f"{rel},{pid},{cam},{'train' if pid < 4 else 'test'}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root / "manifest.csv"


@pytest.fixture
def real_viper() -> Path:
    root = SHARED_DATA / "VIPeR"
    if not (root / "cam_a").is_dir():
        pytest.skip(f"real VIPeR not available at {root} (research-only data, shipped only on the dev machines)")
    return root


@pytest.fixture
def real_caviar() -> Path:
    root = SHARED_DATA / "CAVIAR4REID"
    if not (root / "CAVIARa").is_dir():
        pytest.skip(f"real CAVIAR4REID not available at {root} (research-only data, shipped only on the dev machines)")
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """``(root, MLRDataset)``: a 12-identity synthetic MLR set at 64 × 32 (one per test module), for stage runs."""
    from lib.data import MLRConfig, MLRDataset, build_mlr
    from lib.data.synthetic import SyntheticConfig, generate_synthetic

    root = tmp_path_factory.mktemp("tiny")
    csv = generate_synthetic(root / "data", SyntheticConfig(num_identities=12, num_cameras=3, images_per_camera=2,
                                                            height=64, width=32, seed=0), progress=False)
    manifest = build_mlr(csv, root / "out" / "mlr" / "synthetic-seed0", MLRConfig("synthetic", seed=0), progress=False)
    return root, MLRDataset.load(manifest)


@pytest.fixture(scope="session")
def trained_profile(tmp_path_factory):
    """``(profile_dir, MLRDataset)``: a profile folder holding short real runs of both methods on a 12-identity
    synthetic set — PS-HRNet's default variant (phase 1, phase 2, baseline), a student initialised from its teacher
    (``teacher_init``), Solo SR, FTWA — made once per test
    session for the tests that use trained runs (loading, matching, explorer, resolution sweep, ranking)."""
    from lib.data import MLRConfig, MLRDataset, build_mlr
    from lib.data.synthetic import SyntheticConfig, generate_synthetic
    from lib.methods import METHODS, load_config, run_variant

    root = tmp_path_factory.mktemp("trained")
    csv = generate_synthetic(root / "data", SyntheticConfig(num_identities=12, num_cameras=3, images_per_camera=2,
                                                            height=64, width=32, seed=0), progress=False)
    profile = root / "outputs" / "tiny"
    manifest = build_mlr(csv, profile / "mlr" / "synthetic-seed0", MLRConfig("synthetic", seed=0), progress=False)
    ds = MLRDataset.load(manifest)
    short = {"runtime.max_steps_per_epoch": 2}
    pcfg = load_config("configs/pshrnet/tiny.yaml", short | {"phase1.epochs": 1, "phase2.epochs": 1,
                                                              "baseline.epochs": 1, "solo_sr.epochs": 1})
    run_variant(METHODS.get("pshrnet"), pcfg, ds=ds, split=0, root=profile / "runs", progress=False,
                outputs=["pshrnet", "teacher_lr", "baseline"])
    run_variant(METHODS.get("pshrnet"), pcfg, ds=ds, split=0, root=profile / "runs", variant="solo_sr",
                progress=False, outputs=["solo_sr"])
    # the cpu profile's student starts as a copy of its teacher (its phase 2 never reads `model`)
    run_variant(METHODS.get("pshrnet"), load_config("configs/pshrnet/tiny.yaml", {**short, "phase1.epochs": 1,
                "phase2.epochs": 1, "phase2.init": "teacher"}), ds=ds, split=0, root=profile / "runs",
                variant="teacher_init", progress=False, outputs=["pshrnet"])
    fcfg = load_config("configs/ftwa/tiny.yaml", short | {"train.epochs": 1, "runtime.keep_checkpoint": True})  # last.pt
    run_variant(METHODS.get("ftwa"), fcfg, ds=ds, split=0, root=profile / "runs", progress=False)
    return profile, ds
