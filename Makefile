# Two commands do all the set-up: `make demo` and `make test`.
# Both create .venv when missing and reinstall only when pyproject.toml changed.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export GANBENCH_DATA ?= $(if $(wildcard ../shared/data),../shared/data,data)

.PHONY: demo test bench clean-demo

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "ganbench needs Python 3.11 ($(PYTHON) not found; set PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

demo: $(VENV)/.installed
	$(PY) -m ganbench.demo

# Two pytest-xdist workers, a test module each at a time (its module fixtures built once); tests/conftest.py gives
# each worker half the cores' torch threads.
test: $(VENV)/.installed-test
	$(PY) -m pytest -q -n 2 --dist loadscope

# Every benchmark in turn (about 40 minutes on 2 CPU cores); each also runs alone, see benchmarks/RESULTS.md.
bench: $(VENV)/.installed
	$(PY) benchmarks/data_speed.py
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/eval_speed.py
	$(PY) benchmarks/time_to_quality.py
	$(PY) benchmarks/sweep_scaling.py
