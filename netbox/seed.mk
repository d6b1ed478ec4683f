# Seed the local NetBox with the demo plant (dtnlab netbox seed: idempotent, a second run
# changes nothing). Included by the main Makefile after netbox/netbox.mk; uses its BIN,
# INSTALLED and NETBOXCTL.

NETBOX_SEED_INVENTORY ?= labs/demo-plant/inventory.yaml

.PHONY: netbox-seed

# `make netbox` seeds too: make runs a target's prerequisites before its recipe, so this one
# starts NetBox itself (netboxctl up is idempotent) and the `up` of `netbox` then finds it running.
netbox: netbox-seed

netbox-seed: $(INSTALLED) ## Start the local NetBox if needed and load the demo plant into it
	$(NETBOXCTL) up
	$(BIN)/dtnlab netbox seed --inventory $(NETBOX_SEED_INVENTORY)
