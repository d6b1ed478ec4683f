# Local NetBox for dtnlab (see netbox/README.md). Included by the main Makefile.

PYTHON ?= python3
# Captured at include time, so the fragment works whatever directory includes it.
NETBOX_MK_DIR := $(dir $(lastword $(MAKEFILE_LIST)))
NETBOXCTL = $(PYTHON) $(NETBOX_MK_DIR)netboxctl.py

.PHONY: netbox netbox-fresh netbox-down netbox-status

netbox: ## Start a local NetBox 4.7 on 127.0.0.1:$${NETBOX_PORT:-8000}; credentials in .netbox/netbox.env
	$(NETBOXCTL) up

netbox-fresh: ## Like `netbox`, but with an empty database cloned from the migrated template
	$(NETBOXCTL) up --fresh

netbox-down: ## Stop the NetBox web server and RQ worker started by `make netbox`
	$(NETBOXCTL) down

netbox-status: ## Show NetBox processes, databases and API health
	$(NETBOXCTL) status
