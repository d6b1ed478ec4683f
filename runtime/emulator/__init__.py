"""Device emulators: the physical-entity layer, thousands of MQTT devices per process."""
