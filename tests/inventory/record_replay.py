"""Record netbox_replay/demo.json.gz from the local NetBox seeded with the demo plant.

Run after the demo inventory changes:
`make netbox && .venv/bin/python -m tests.inventory.record_replay`.
"""

from __future__ import annotations

import gzip
import json

from dtnlab.inventory.netbox_source import NetBoxSource
from tests.inventory.conftest import DEMO_SITES, REPLAY_DIR, RecordingAdapter, read_env


def main() -> None:
    env = read_env()
    source = NetBoxSource(env["NETBOX_URL"], env["NETBOX_TOKEN"], lab="demo-plant",
                          sites=DEMO_SITES)
    adapter = RecordingAdapter()
    source.client.session.mount("http://", adapter)
    source.load()
    # The replay answers for http://netbox.test: only paths and queries are keys.
    body = json.dumps(adapter.answers, sort_keys=True).replace(env["NETBOX_URL"],
                                                               "http://netbox.test")
    (REPLAY_DIR / "demo.json.gz").write_bytes(gzip.compress(body.encode(), mtime=0))
    print(f"recorded {len(adapter.answers)} answers into {REPLAY_DIR / 'demo.json.gz'}")


if __name__ == "__main__":
    main()
