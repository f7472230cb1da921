# The two commands: `make test` and `make demo`. Each creates .venv when it is missing and
# reinstalls when pyproject.toml or the version (tinylora/__init__.py) changed (the stamp files
# below remember what was installed).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: test demo gradcheck bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.stamp-test: pyproject.toml tinylora/__init__.py | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.stamp-plots: pyproject.toml tinylora/__init__.py | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[plots]'
	touch $@

test: $(VENV)/.stamp-test
	MPLBACKEND=Agg $(BIN)/python -m pytest

demo: $(VENV)/.stamp-plots
	MPLBACKEND=Agg $(BIN)/tinylora demo

gradcheck: $(VENV)/.stamp-plots
	$(BIN)/tinylora gradcheck

bench: $(VENV)/.stamp-plots
	$(BIN)/tinylora bench

lint: | $(BIN)/python
	$(BIN)/python -m pip install --quiet ruff
	$(BIN)/ruff check tinylora tests scripts lessons

clean:
	rm -rf $(VENV) demo-out .pytest_cache
