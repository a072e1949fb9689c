# Quick start: `make run` starts the product, `make test` runs the tests.
# Both set up what is missing first: a virtualenv with this project, the
# Docker Engine with gVisor (images/engine-setup.sh) and the runner image
# (images/build.py, offline, rebuilt only when its inputs change).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SOURCES := sandbox gateway tests benchmarks images

.PHONY: run test check bench image engine setup smoke clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Pango and a CJK font, for the reports' PDFs (images/render-setup.sh).
setup: $(STAMP)
	bash images/render-setup.sh

engine:
	bash images/engine-setup.sh

image: setup engine
	$(BIN)/python images/build.py ensure

# The gateway with a seeded demo in var/ (accounts with printed tokens, the
# synthetic city, a grant), served on 127.0.0.1:8700 until Ctrl-C.
run: image
	$(BIN)/dsr engine status
	$(BIN)/dsr gateway demo

# A job through the bare sandbox backend, then the providers' side without the gateway.
smoke: image
	$(BIN)/dsr smoke
	$(BIN)/dsr demo

# The engine and image are set up when this machine can; where it cannot, the
# tests that need them skip with the reason (in CI they fail instead).
test: setup
	-bash images/engine-setup.sh && $(BIN)/python images/build.py ensure
	$(BIN)/python -m pytest

check: setup
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/mypy

bench: image
	$(BIN)/python benchmarks/backend_latency.py
	$(BIN)/python benchmarks/views_throughput.py
	$(BIN)/python benchmarks/ledger_check.py
	$(BIN)/python benchmarks/checker_throughput.py
	$(BIN)/python benchmarks/gateway_latency.py
	$(BIN)/python benchmarks/he_products.py
	$(BIN)/python benchmarks/he_gateway.py
	@# ACRO runs in its own venv (~/.cache/dsr/acro-venv); skipped, with the reason, when it cannot be made.
	$(BIN)/python benchmarks/acro_compare.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
