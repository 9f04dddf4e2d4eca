# One-word entry points. Everything installs into .venv from this repo's own files.
#   make setup        create .venv with exactly the versions in requirements.lock (+ torch's CPU build)
#   make pipeline     set up, then run the course pipeline at the budget ($MINILM_BUDGET, default laptop)
#   make test         set up, then run unit + exercise + notebook (nbval) tests at the smoke budget;
#                     the same examples every run, with or without CI=true
#   make fuzz         the property tests with fresh random examples (hypothesis explores), many more of them
#   make lab          set up, then open JupyterLab on notebooks/
#   make check CH=01  test your exercise file for chapter 01
#   make notebooks    re-execute every notebook at the laptop budget, refreshing the committed outputs
#   make lock         re-resolve requirements.lock from pyproject.toml (LOCK_ARGS=--upgrade: newest versions)
#   make test-latest  the test suite in .venv-latest, with the newest versions pyproject.toml allows
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
LATEST := .venv-latest
CH     ?= 01
NOTEBOOK_TIMEOUT ?= 1800
TORCH_VERSION := 2.13.0
# torch's CUDA-only dependencies on Linux: left out of the lock, so that installing it never pulls the
# CUDA build's packages (the CPU build needs none of them; a CUDA build brings its own).
CUDA_ONLY := cuda-bindings cuda-pathfinder cuda-toolkit triton nvidia-cublas nvidia-cuda-cupti \
	nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand \
	nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-nccl-cu13 nvidia-nvjitlink \
	nvidia-nvshmem-cu13 nvidia-nvtx
LOCK_ARGS ?=
TEST_PATHS := minilm tests exercises/tests notebooks
TEST_FLAGS := --doctest-modules --nbval-lax --nbval-current-env --nbval-cell-timeout=300 -p no:cacheprovider --durations=12
TEST_ENV   := MINILM_BUDGET=smoke MINILM_EXERCISES=solutions

.PHONY: setup pipeline test fuzz lab check notebooks lock test-latest clean

setup: $(STAMP)

# Exactly the lock: --no-deps installs what it lists and nothing else; pip check proves it is whole.
$(STAMP): pyproject.toml requirements.lock scripts/install_torch.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@bash scripts/install_torch.sh $(BIN)/python $(TORCH_VERSION)
	$(BIN)/python -m pip install --quiet --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	@touch $(STAMP)

pipeline: setup
	$(BIN)/minilm pipeline

test: setup
	$(TEST_ENV) $(BIN)/python -m pytest $(TEST_PATHS) $(TEST_FLAGS)

fuzz: setup
	$(TEST_ENV) MINILM_HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest tests -m fuzz -p no:cacheprovider

lab: setup
	$(BIN)/jupyter lab notebooks/

check: setup
	$(BIN)/minilm check $(CH)

notebooks: setup
	MINILM_BUDGET=laptop $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=$(NOTEBOOK_TIMEOUT) --ExecutePreprocessor.record_timing=False notebooks/*.ipynb

# One lock for Python 3.11-3.13 on Linux and macOS (uv's universal resolution), with markers where they differ.
lock: setup
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		$(addprefix --no-emit-package ,$(CUDA_ONLY)) --custom-compile-command "make lock" \
		$(LOCK_ARGS) -o requirements.lock

# Drift met on purpose: the newest versions pyproject.toml allows, in a venv of their own.
test-latest:
	@test -x $(LATEST)/bin/python || $(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	@bash scripts/install_torch.sh $(LATEST)/bin/python $(TORCH_VERSION)
	$(LATEST)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e ".[dev]"
	$(LATEST)/bin/python -m pip freeze --exclude-editable > $(LATEST)/versions.txt
	@echo "versions under test: $(LATEST)/versions.txt (diff it against requirements.lock)"
	$(TEST_ENV) MINILM_UNLOCKED=1 $(LATEST)/bin/python -m pytest $(TEST_PATHS) $(TEST_FLAGS)

clean:
	rm -rf $(VENV) $(LATEST) runs .pytest_cache
