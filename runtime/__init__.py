"""Runtime: device emulators, twin engine, storage and API, run from a generated lab folder."""
