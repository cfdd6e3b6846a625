# The two set-up commands of the README. Both create .venv on first use.
# torch is installed first and pinned: on a CPU machine `torch==2.13.0` comes from a local CPU wheel,
# while a loose requirement with no torch present would pull a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
PYTEST_ARGS ?= -q -m "not slow"

.PHONY: demo test test-slow install clean

$(BIN)/synthfr: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $@

install: $(BIN)/synthfr

demo: $(BIN)/synthfr
	$(BIN)/synthfr demo

test: $(BIN)/synthfr
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: $(BIN)/synthfr
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
