# The two commands: `make demo` and `make test`. Both install what is missing.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: demo test bench deps-demo deps-test deps-bench venv clean

demo: deps-demo venv
	$(VENV)/bin/checkd demo

test: deps-test venv
	$(PY) -m pytest $(PYTEST_ARGS)

bench: deps-bench venv
	$(PY) bench/poller_throughput.py $(BENCH_ARGS)
	$(PY) bench/central_ingest.py
	$(PY) bench/notify_latency.py
	$(PY) bench/failover_times.py

deps-demo:
	sh contrib/install-debian-deps demo
deps-test:
	sh contrib/install-debian-deps test
deps-bench:
	sh contrib/install-debian-deps bench

venv: $(STAMP)
$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[central,test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info
