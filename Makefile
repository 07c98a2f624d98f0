# kanlab — the two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export OMP_NUM_THREADS ?= 2

.PHONY: venv demo test test-fast bench clean browser

venv: $(STAMP)

# Debian's Chromium for the page tests (needs root; without it those tests skip outside CI)
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed: page tests will skip"; }

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: venv
	$(PY) -m kanlab demo

test: venv browser
	$(PY) -m pytest -q -n 2 -p no:cacheprovider

test-fast: venv
	$(PY) -m pytest -q -x -n 2 -m "not slow and not browser" -p no:cacheprovider

bench: venv
	$(PY) benchmarks/speed.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
