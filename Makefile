# dtnlab: one entry point for people and CI.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
INVENTORY ?= labs/demo-plant/inventory.yaml
LAB_ARGS := --inventory $(INVENTORY)
# Debian packages the lab and the tests use: the real broker, NetBox's build needs, a browser.
APT_PACKAGES := mosquitto mosquitto-clients gcc libpq-dev iproute2 iptables iputils-ping \
                chromium chromium-driver postgresql redis-server

.PHONY: help setup system-packages services typecheck generate validate diff lab up down status regen test \
        test-fast lint golden bench clean images

help:
	@echo "make lab      set up, generate the demo plant and run it"
	@echo "make test     set up and run every test (real Mosquitto, PostgreSQL, NetBox)"
	@echo "make down | status | regen | generate | diff | lint | golden | bench | netbox"

$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

setup: system-packages $(INSTALLED)

# PostgreSQL (trust on 127.0.0.1) and Redis serve the tests and NetBox; start them when they are down.
services: system-packages
	@pg_isready -q -h 127.0.0.1 -p 5432 || { echo "starting PostgreSQL"; \
	    pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | tail -n 1) main start; }
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { echo "starting Redis"; \
	    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no; }

validate: setup
	$(BIN)/dtnlab validate $(LAB_ARGS)

generate: setup
	$(BIN)/dtnlab generate $(LAB_ARGS)

diff: setup
	$(BIN)/dtnlab diff $(LAB_ARGS)

lab: setup
	$(BIN)/dtnlab up $(LAB_ARGS)

up: lab

down: setup
	$(BIN)/dtnlab down $(LAB_ARGS)

status: setup
	$(BIN)/dtnlab status $(LAB_ARGS)

regen: setup
	$(BIN)/dtnlab regen $(LAB_ARGS)

# Every test, against the real services; pytest's "no tests collected" (5) fails too.
test: setup services netbox
	$(BIN)/pytest -p no:cacheprovider; status=$$?; \
	if [ $$status -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi; exit $$status

test-fast: setup services
	$(BIN)/pytest -p no:cacheprovider -m "not netbox and not netns and not browser"

lint: setup typecheck
	$(BIN)/ruff check .

# mypy --strict over the installed package layout (dtnlab.inventory is inventory/ and so on):
# a view of symlinks gives mypy the package tree that setuptools' package-dir maps at run time.
typecheck: setup
	@rm -rf .mypy-src && mkdir -p .mypy-src/dtnlab
	@ln -s $(CURDIR)/dtnlab/* .mypy-src/dtnlab/
	@for d in inventory generators runtime; do ln -s $(CURDIR)/$$d .mypy-src/dtnlab/$$d; done
	cd .mypy-src && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml -p dtnlab

golden: setup
	$(BIN)/python -m tests.golden.regenerate

bench: setup services netbox
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

-include netbox/netbox.mk
-include netbox/seed.mk

# The dtnlab node image used by labs/<lab>/topology.clab.yml (needs a Docker engine).
IMAGE ?= dtnlab/node:0.1.0
images:
	@command -v docker >/dev/null || { echo "docker is not installed; images need a Docker engine" >&2; exit 1; }
	docker build -f clab/Dockerfile -t $(IMAGE) .
