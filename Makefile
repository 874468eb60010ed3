# Two commands on a fresh machine: `make serve` and `make test`. Each builds .venv from
# pyproject.toml the first time (and again whenever pyproject.toml changes). `make test` also installs
# what the browser, nginx and framework tests need (scripts/install-test-deps.sh: apt and npm, only
# what is missing), so nothing is skipped; `make test-python` is the fast path without that step.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: serve test test-python test-deps lint bench bench-peers clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

serve: $(STAMP)
	$(PY) -m proxy serve --config config.toml

# The suite runs in TEST_WORKERS processes (pytest-xdist), each test module kept in one of them (its
# module-scoped servers are started once): the tests mostly wait on the servers they start.
TEST_WORKERS ?= 3
test: $(STAMP) test-deps
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadscope

# The Python suite alone: tests whose tools are missing (nginx, Chromium, node packages) skip, saying why.
test-python: $(STAMP)
	$(PY) -m pytest -q

test-deps:
	bash scripts/install-test-deps.sh

# What CI checks before the suite: ruff's lint and format check over the tree, mypy (strict) on proxy/.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) data test-artifacts

# Render speed vs a naive Pillow pipeline, HTTP hits/misses vs a fixed-body app, upload time before/after
# the upload-path changes, then bytes at equal SSIM vs our previous settings and IPX (installed into /tmp
# like bench-peers; skipped without node) (see bench/README.md).
bench: $(STAMP)
	$(PY) bench/render_bench.py
	$(PY) bench/http_bench.py
	$(PY) bench/upload_bench.py
	$(PY) bench/quality.py

# Optional: the same photos and requests against IPX (npm ipx@3) and thumbor (PyPI), installed into
# /tmp/resize-proxy-peers by the script (not part of `make bench` or CI).
bench-peers: $(STAMP)
	$(PY) bench/peers.py
