# Two entry points: `make demo` and `make test`. Both build .venv on first use: the demo
# with the core install alone (ONNX Runtime, OpenCV, the shipped models: no torch, Ray or
# dlib), the tests with every extra they test (torch 2.13.0, the CPU wheel, so they can
# train; FastAPI, Ray, dlib and the dev tools).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORE := $(VENV)/.ferkit-core
ALL := $(VENV)/.ferkit-all
EXTRAS := dev,train,serve,dlib,ray

.PHONY: demo test test-data lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(CORE): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(CORE)

$(ALL): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(CORE) $(ALL)

demo: $(CORE)
	$(BIN)/ferkit demo --out demo_out

lint: $(ALL)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

test: lint
	$(BIN)/python -m pytest -q

# Every shipped model's card accuracy checked exactly on FER-2013 (needs ../shared).
test-data: $(ALL)
	FERKIT_FULL_DATA_TESTS=1 $(BIN)/python -m pytest -q tests/modelfile/test_shipped_model.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache .ruff_cache
