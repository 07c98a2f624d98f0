# kanlab — the two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# small KANs run fastest on one thread per process (2 threads cost more in barriers than they gain)
export OMP_NUM_THREADS ?= 1

.PHONY: venv demo test test-fast bench bench-full clean browser

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

# two pytest workers with one thread each (2 cores); slow tests included
test: venv browser
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 -p no:cacheprovider

test-fast: venv
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -x -n 2 -m "not slow and not browser" -p no:cacheprovider

# benchmarks are not tests: speed tables (1 and 2 threads) and the demo fit against pykan's (the bench extra);
# bench-full adds the 784-256-10 stack, batches 64/1024/8192 and G = 10, 100 (long)
bench: venv
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/speed.py --quick --e2e

bench-full: venv
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/speed.py --e2e

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
