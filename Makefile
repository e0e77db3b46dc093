# Two entry points: `make demo` and `make test`. Both build .venv on first use
# (with the train extra: torch 2.13.0, the CPU wheel, so the tests can train).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ferkit-installed

.PHONY: demo test test-data lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,train,serve,dlib,ray]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ferkit demo --out demo_out

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

test: lint
	$(BIN)/python -m pytest -q

# Every shipped model's card accuracy checked exactly on FER-2013 (needs ../shared).
test-data: $(STAMP)
	FERKIT_FULL_DATA_TESTS=1 $(BIN)/python -m pytest -q tests/modelfile/test_shipped_model.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache .ruff_cache
