# Brook: `make run` starts a broker on localhost:9092 (data in ./data); `make test` runs everything.
# Both create .venv and install what they need, on a fresh Debian machine.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# command (or file path):Debian package, for what the compatibility tests drive; the ZooKeeper
# harness (compat_tests/zookeeper.py) runs the zookeeper package's jar with java.
APT_TOOLS := kcat:kcat node:nodejs npm:npm /usr/share/java/zookeeper.jar:zookeeper

.PHONY: run install test test-deps system-deps node-deps lint typecheck bench codegen clean accelerate

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[fast,accel]'
	touch $@

install: $(VENV)/.installed

run: $(VENV)/.installed accelerate
	$(PY) -m broker $(ARGS)

$(VENV)/.test-installed: $(VENV)/.installed pyproject.toml
	$(PIP) install -q -e '.[fast,accel,test,bench]'
	touch $@

# Debian packages the compatibility tests drive (installed when running as root and missing).
system-deps:
	@missing=""; for tool in $(APT_TOOLS); do \
	  { command -v $${tool%%:*} || test -e $${tool%%:*}; } >/dev/null 2>&1 || missing="$$missing $${tool#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages (run as root to install):$$missing"; fi; \
	fi

node-deps: compat_tests/node/node_modules/.installed

compat_tests/node/node_modules/.installed: compat_tests/node/package.json compat_tests/node/package-lock.json
	cd compat_tests/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test-deps: $(VENV)/.test-installed system-deps node-deps

# compat_tests/test_docker.py builds and runs the image through the Docker API: an existing engine
# (DOCKER_HOST, /var/run/docker.sock) or Debian's podman via ../shared/containers/oci.sh (as root;
# ~80 s on a new machine, ~0.2 s after). docker/wheels/ gets the image's wheels: no network in the build.
test: test-deps accelerate
	@engine=$$(PYTHON=$(PY) scripts/container-engine.sh prepare | tail -n 1) || engine=; \
	echo "container engine: $${engine:-none}"; \
	status=0; env $$engine $(PY) -m pytest || status=$$?; \
	scripts/container-engine.sh down >/dev/null 2>&1 || true; \
	exit $$status

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

codegen:
	$(PY) -m protocol.codegen

# The record scanner compiled with mypyc (the accel extra) when a C compiler is there; the
# pure-Python module is used otherwise. Never fails.
accelerate: $(VENV)/.installed
	$(PY) scripts/build_accel.py

bench: $(VENV)/.test-installed accelerate
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis protocol/records/*.so
