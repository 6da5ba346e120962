# mynacard: `make demo` runs the main job end to end, `make test` runs the whole suite.
# Both start with `setup`, which installs everything a fresh Debian 12 machine lacks.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
APT_PACKAGES := pcscd vsmartcard-vpcd softhsm2 opensc openssl openjdk-17-jdk-headless maven wrk \
                postgresql libpcsclite-dev swig python3-venv gcc libc6-dev opencryptoki \
                fonts-ipafont-gothic chromium chromium-driver nginx
MVN := mvn -q -B -Dstyle.color=never
JAVA_STAMP := emulator/bridge/target/mynacard-bridge.jar
LOOPBACK_SHIM := emulator/native/target/libloopback_bind.so

.PHONY: setup apt venv java native demo test lint bench clean

setup: apt venv java native

# apt-get only when a package is missing, so setup stays fast and idempotent.
apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing $$missing" >&2; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PIP) install -q --upgrade pip > /dev/null 2>&1
	@$(PIP) install -q -e '.[dev]' > $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@touch $@

java: $(JAVA_STAMP)

$(JAVA_STAMP): $(shell find card/applet/src card/applet/pom.xml emulator/bridge/src emulator/bridge/pom.xml -type f 2>/dev/null)
	@echo "setup: building the applets and the card bridge (Maven)" >&2
	@$(MVN) -f card/applet/pom.xml install -DskipTests
	@$(MVN) -f emulator/bridge/pom.xml package -DskipTests
	@test -f $@

native: $(LOOPBACK_SHIM)

# Preloaded into the emulator's pcscd: vpcd's card ports listen on loopback only.
$(LOOPBACK_SHIM): emulator/native/loopback_bind.c
	@mkdir -p $(@D)
	@cc -O2 -Wall -Wextra -Werror -shared -fPIC -o $@ $< -ldl

demo: setup
	@$(PY) -m issuance.demo

# Packages that have settled are type-checked; the others join as they settle.
MYPY_PACKAGES := card emulator hsm pki issuance

lint: venv
	@$(VENV)/bin/lint-imports
	@$(VENV)/bin/ruff check card emulator hsm pki issuance tests bench
	@$(VENV)/bin/mypy $(MYPY_PACKAGES)

test: setup lint
	@$(MVN) -f card/applet/pom.xml test
	@$(VENV)/bin/pytest -q tests

# Every benchmark; those that keep a certificate store run on SQLite and on PostgreSQL
# (a private cluster each run).
bench: setup
	@$(PY) -m bench --stores sqlite,postgresql

clean:
	rm -rf $(VENV) card/applet/target emulator/bridge/target emulator/native/target
