# The two commands: `make demo` and `make test`. Both install what is missing.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: demo demo-ha test bench bench-quick deb deps-demo deps-demo-ha deps-test deps-bench deps-deb venv clean

demo: deps-demo venv
	$(VENV)/bin/checkd demo

# The demo with central as an active/standby pair on a throwaway PostgreSQL (docs/ha.md).
demo-ha: deps-demo-ha venv
	$(PY) contrib/demo_ha.py

# Two pytest workers (pytest-xdist), one test file at a time each: most tests wait on
# real daemons, so two files side by side halve the wall time on 2 cores (19 -> 10 min).
# TEST_WORKERS=0 runs in one process; a file's tests always share one worker, so its
# module fixtures (a prosody, a PostgreSQL cluster) start once.
TEST_WORKERS ?= 2
test: deps-test venv
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# docs/benchmarks.md, regenerated from bench/benchmarks.md.j2 by one run of every benchmark
# (bench/run.py): the full mode takes 30-40 minutes, bench-quick under 5.
bench: deps-bench venv
	$(PY) bench/run.py --full $(BENCH_ARGS)

bench-quick: deps-bench venv
	$(PY) bench/run.py --quick $(BENCH_ARGS)

# The checkd and checkd-central .deb files, built in a copy outside the checkout
# and lintian-checked (docs/packaging.md). tests/test_package.py builds them the
# same way, installs them with apt, runs them as the checkd user and purges them.
DEB_DIR ?= /tmp/checkd-deb
deb: deps-deb
	sh contrib/build-deb $(DEB_DIR)

deps-demo:
	sh contrib/install-debian-deps demo
deps-demo-ha:
	sh contrib/install-debian-deps demo-ha
deps-test:
	sh contrib/install-debian-deps test
deps-bench:
	sh contrib/install-debian-deps bench
deps-deb:
	sh contrib/install-debian-deps deb

venv: $(STAMP)
$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The rrdtool binding (central extra) builds against Debian's librrd: librrd-dev,
	# pkg-config, gcc and python3-dev come from contrib/install-debian-deps.
	$(PY) -m pip install -q -e '.[central,test]'
	$(PY) -c 'import rrdtool' || { echo 'the rrdtool binding did not build: apt-get install librrd-dev pkg-config gcc python3-dev' >&2; exit 1; }
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info
