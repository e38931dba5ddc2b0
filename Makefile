# Every target that needs Python builds .venv first from requirements.txt (again whenever that file changes).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PARAMS ?=

.PHONY: venv test lint run clean

venv: $(STAMP)

$(STAMP): requirements.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest

run: $(STAMP)
	$(BIN)/python -m simulator.demo $(if $(PARAMS),--params $(PARAMS))

clean:
	rm -rf $(VENV) run build .pytest_cache .ruff_cache .hypothesis
