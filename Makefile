# dripd: the two set-up commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: run test test-unit test-integration install deps-debian check-config clean typecheck

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/dripd -c etc/dripd.toml

check-config: $(STAMP)
	$(VENV)/bin/dripd --check-config -c etc/dripd.toml

# Debian packages the integration tests need: real servers, not mocks.
deps-debian:
	@missing=""; \
	for pkg in dovecot-imapd postfix systemd prometheus chromium chromium-driver spamassassin postgresql; do \
	  dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# Strict types first (configured in pyproject.toml's [tool.mypy]): a type error fails the run.
typecheck: $(STAMP)
	$(PY) -m mypy

# Two workers, a test file per worker at a time (--dist loadfile keeps a file's module fixtures
# and its daemons together): most integration time is spent waiting on real servers and
# processes, so two files at once take the suite from ~15 to ~8 minutes on 2 cores.
test: $(STAMP) deps-debian typecheck
	$(PY) -m pytest -q -n 2 --dist loadfile

test-unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

test-integration: $(STAMP) deps-debian
	$(PY) -m pytest -q -n 2 --dist loadfile tests/integration

clean:
	rm -rf $(VENV) var .pytest_cache

# The generated references (tests/unit/test_reference_docs.py fails when they drift from the code).
.PHONY: docs
docs: $(STAMP)
	$(PY) -m docs.generate config > docs/configuration.md
	$(PY) -m docs.generate api > docs/api.md
	$(PY) -m docs.generate dripctl > docs/dripctl.md

# The long reliability runs (RELIABILITY.md): the crash and load suites at full size.
.PHONY: soak
soak: $(STAMP) deps-debian
	DRIPD_SOAK=1 $(PY) -m pytest -q -s tests/integration/test_reliability_crash.py tests/integration/test_load.py

# Benchmarks (issue 7): figures beside a reference measured in the same run; never pass/fail.
# `make bench` fits in ~15 minutes on 2 cores; `make bench-full` runs the issue's full sizes.
.PHONY: bench bench-full
BENCH_STAMP := $(VENV)/.bench-installed
BENCH_SCRIPTS := bench_render bench_send bench_smtp_transport bench_scale bench_dispatch bench_lateness bench_reply bench_api bench_webhooks bench_inbox bench_variants bench_import bench_pg_driver bench_cluster

$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(PIP) install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) deps-debian
	@for s in $(BENCH_SCRIPTS); do $(PY) bench/$$s.py || exit 1; done

bench-full: $(BENCH_STAMP) deps-debian
	@for s in $(BENCH_SCRIPTS); do $(PY) bench/$$s.py --full || exit 1; done
