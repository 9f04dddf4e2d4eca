# One-word entry points. Everything installs into .venv from this repo's own files.
#   make setup      create .venv and install minilm (editable) with its dev tools
#   make pipeline   set up, then run the course pipeline at the budget ($MINILM_BUDGET, default laptop)
#   make test       set up, then run unit + exercise + notebook (nbval) tests at the smoke budget
#   make lab        set up, then open JupyterLab on notebooks/
#   make check CH=01   test your exercise file for chapter 01
#   make notebooks  re-execute every notebook at the laptop budget, refreshing the committed outputs
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
CH     ?= 01
NOTEBOOK_TIMEOUT ?= 1800

.PHONY: setup pipeline test lab check notebooks clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

pipeline: setup
	$(BIN)/minilm pipeline

test: setup
	MINILM_BUDGET=smoke MINILM_EXERCISES=solutions $(BIN)/python -m pytest minilm tests exercises/tests \
		notebooks --doctest-modules --nbval-lax --nbval-current-env --nbval-cell-timeout=300 -p no:cacheprovider

lab: setup
	$(BIN)/jupyter lab notebooks/

check: setup
	$(BIN)/minilm check $(CH)

notebooks: setup
	MINILM_BUDGET=laptop $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=$(NOTEBOOK_TIMEOUT) --ExecutePreprocessor.record_timing=False notebooks/*.ipynb

clean:
	rm -rf $(VENV) runs .pytest_cache
