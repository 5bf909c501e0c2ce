# The two README commands: `make demo` and `make test`. Both create .venv when it is missing and install into it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# torchaudio 2.11 is built against the CUDA build of torch; torch 2.14.1 (CUDA build, runs on CPU) + torchaudio 2.11.0
# install and work together on CPU-only machines. Override on a GPU machine, e.g. `make install TORCH_PINS=`.
TORCH_PINS ?= torch==2.14.1 torchaudio==2.11.0
STAMP  := $(VENV)/.installed
DEMO_DIR ?= runs/demo

.PHONY: install test demo bench clean-demo

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP): $(PY) setup.cfg pyproject.toml
	$(if $(TORCH_PINS),$(PIP) install -q $(TORCH_PINS))
	$(PIP) install -q -e ".[dev]" $(TORCH_PINS)
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -ra tests

demo: $(STAMP)
	$(PY) scripts/demo.py $(DEMO_DIR)

bench: $(STAMP)
	$(PY) tests/bench/run_all.py --out tests/bench/RESULTS.md

clean-demo:
	rm -rf $(DEMO_DIR)
