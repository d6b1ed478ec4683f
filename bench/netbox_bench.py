"""NetBox read benchmark: dtnlab's NetBox source against nrx (-o cyjs) on the same seeded site."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# For each size, a site `bench-<n>` of n twinned devices (bench/synthetic.py: interfaces, cables,
# addresses, config contexts) is seeded into NetBox unless it already holds them (seeding 2,000
# devices takes minutes). Then, back to back: dtnlab reads the site and builds the Lab (and,
# timed apart, generates the lab's files), and nrx 0.9 exports the same site as cyjs from its own
# venv (.netbox/nrx-venv, created on first use). Prints both times and their ratio, and writes
# bench/results/netbox.json.
#
# Run: python bench/netbox_bench.py [--sizes 500,2000] [--runs 3] [--nrx-runs 1]
# NetBox: NETBOX_URL/NETBOX_TOKEN, else the env file of netbox/netboxctl.py (DTN_NETBOX_HOME).
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.synthetic import synthetic_inventory  # noqa: E402
from dtnlab.generators import writer  # noqa: E402
from dtnlab.generators.pipeline import render_lab  # noqa: E402
from dtnlab.inventory.netbox_client import NetBoxClient  # noqa: E402
from dtnlab.inventory.netbox_reader import PagedReader, Query  # noqa: E402
from dtnlab.inventory.netbox_seed import seed  # noqa: E402
from dtnlab.inventory.netbox_source import FIELDS, NetBoxSource  # noqa: E402
from tests.regen.netboxlab import netbox_busy  # noqa: E402

NRX_VENV = REPO / ".netbox" / "nrx-venv"
NRX_VERSION = "0.9.0"
LINK_FIELDS = ("cable", "cable_end", "link_peers", "link_peers_type")


def bench_inventory(devices: int) -> dict[str, Any]:
    """synthetic_inventory(n) as one site `bench-<n>` with names and addresses of its own, so
    several sizes live side by side in one NetBox."""
    data = synthetic_inventory(devices)
    site = f"bench-{devices}"
    for obj in data["dcim.sites"]:
        obj.update(name=site, slug=site)  # nrx selects sites by name, dtnlab by slug
    for obj in data["dcim.devices"]:
        obj["name"] = f"b{devices}-{obj['name']}"
    # One /16 of 100.64.0.0/10 per size, clear of the demo plant's 10.x and 172.30 ranges
    # (NetBox refuses duplicate addresses); the synthetic plant numbers hosts from 10.0.0.1.
    net = ipaddress.ip_network(f"100.{64 + devices // 100 % 64}.0.0/16")
    hosts = net.hosts()
    renamed = {}
    for addr in data["ipam.ip-addresses"]:
        new = f"{next(hosts)}/{net.prefixlen}"
        renamed[addr["address"]] = new
        addr["address"] = new
    for obj in data["dcim.devices"]:
        if obj.get("primary_ip4"):
            obj["primary_ip4"]["address"] = renamed[obj["primary_ip4"]["address"]]
    data["ipam.prefixes"] = [{"id": 1, "prefix": str(net), "description": site}]
    for context in data["extras.config-contexts"]:
        context["name"] = f"bench {context['name']}"
    return data


def credentials() -> tuple[str, str]:
    """NETBOX_URL and NETBOX_TOKEN from the environment, else the env file of `make netbox`."""
    url, token = os.environ.get("NETBOX_URL", ""), os.environ.get("NETBOX_TOKEN", "")
    if url and token:
        return url, token  # an existing NetBox: there may be no env file at all
    home = Path(os.environ.get("DTN_NETBOX_HOME") or REPO / ".netbox")
    saved = dict(line.split("=", 1) for line in (home / "netbox.env").read_text().splitlines()
                 if "=" in line and not line.startswith("#"))
    return url or saved["NETBOX_URL"], token or saved["NETBOX_TOKEN"]


def ensure_site(url: str, token: str, devices: int) -> dict[str, Any]:
    """Seed the site unless NetBox already holds all of its devices and cables."""
    data = bench_inventory(devices)
    site = f"bench-{devices}"
    client = NetBoxClient(url, token)
    exists = client.page("dcim.sites", {"slug": site, "brief": 1}, 0, 1)[1]
    prefix = data["ipam.prefixes"][0]["prefix"]
    queries = {"dcim.devices": {"site": site}, "dcim.cables": {"site": site},
               "ipam.ip-addresses": {"parent": prefix}}
    have = {ep: client.page(ep, {**params, "brief": 1}, 0, 1)[1] if exists else 0
            for ep, params in queries.items()}
    want = {ep: len(data[ep]) for ep in have}
    if have == want:
        print(f"{site}: already seeded ({want['dcim.devices']} devices, "
              f"{want['dcim.cables']} cables, {want['ipam.ip-addresses']} addresses)")
        return {"seeded": False}
    print(f"{site}: seeding {want['dcim.devices']} devices (NetBox holds {have}) ...",
          flush=True)
    report = seed(data, url, token)
    if report.problems:
        raise SystemExit("seed problems:\n" + "\n".join(report.problems[:20]))
    print(f"{site}: seeded in {report.seconds:.0f}s with {report.requests} requests")
    return {"seeded": True, "seed_s": report.seconds, "seed_requests": report.requests}


def settle(url: str, token: str, limit_s: float = 1800.0) -> float:
    """Wait until NetBox's RQ worker is idle; return the seconds waited.

    After seeding thousands of objects its search-cache jobs run for minutes, which would slow
    the reads timed next (and, after this script, the benchmarks that follow it).
    """
    client = NetBoxClient(url, token)
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        if not netbox_busy(client):
            return time.monotonic() - start
        time.sleep(2)
    raise SystemExit(f"NetBox's background jobs still running after {limit_s:.0f} s")


def time_dtnlab(url: str, token: str, devices: int) -> dict[str, Any]:
    site = f"bench-{devices}"
    source = NetBoxSource(url, token, sites=[site], lab=site)
    start = time.perf_counter()
    lab = source.load()
    read_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        rendered = render_lab(lab, Path(tmp) / site)
        writer.write(Path(tmp) / site, rendered.files, rendered.inventory_digest)
        generate_s = time.perf_counter() - start
    assert len(lab.devices) == devices, f"read {len(lab.devices)} devices, wanted {devices}"
    return {"read_s": read_s, "fetch_s": source.stats.seconds, "generate_s": generate_s,
            "requests": source.stats.requests, "devices": len(lab.devices),
            "links": len(lab.links), "files": len(rendered.files)}


def probe_costs(url: str, token: str, devices: int) -> dict[str, float]:
    """What the design choices cost: each query alone, all of its pages, 4 at a time."""
    site = f"bench-{devices}"
    client = NetBoxClient(url, token)
    reader = PagedReader(client, workers=4)
    fields = dict(FIELDS)
    no_context = fields["dcim.devices"].replace(",config_context", "")
    no_links = ",".join(f for f in fields["dcim.interfaces"].split(",") if f not in LINK_FIELDS)
    peers = no_links + "," + ",".join(LINK_FIELDS)
    queries = {
        "devices (fields, with config_context)": ("dcim.devices",
                                                   {"fields": fields["dcim.devices"]}),
        "devices (fields, no config_context)": ("dcim.devices", {"fields": no_context}),
        "devices (everything)": ("dcim.devices", {}),
        "interfaces (fields, with link peers)": ("dcim.interfaces", {"fields": peers}),
        "interfaces (fields, no link peers)": ("dcim.interfaces", {"fields": no_links}),
        "cables (own fields only)": ("dcim.cables", {"fields": fields["dcim.cables"]}),
        "cables (with terminations)": ("dcim.cables",
                                       {"fields": fields["dcim.cables"] + ",a_terminations,"
                                                  "b_terminations"}),
    }
    costs = {}
    for name, (endpoint, params) in queries.items():
        start = time.perf_counter()
        reader.read([Query(endpoint, endpoint, {"site": site, **params})])
        costs[name] = time.perf_counter() - start
        print(f"  {name:<40} {costs[name]:6.2f}s", flush=True)
    return costs


def ensure_nrx() -> Path:
    nrx = NRX_VENV / "bin" / "nrx"
    if not nrx.exists():
        subprocess.run([sys.executable, "-m", "venv", str(NRX_VENV)], check=True)
        subprocess.run([str(NRX_VENV / "bin" / "pip"), "install", "-q", f"nrx=={NRX_VERSION}"],
                       check=True)
    return nrx


def time_nrx(url: str, token: str, devices: int, work: Path) -> dict[str, Any]:
    """nrx -o cyjs: the export that needs no template repository (NETBOX-NOTES)."""
    site = f"bench-{devices}"
    conf = work / "nrx.conf"
    # Its default role list (routers, switches) would make NetBox answer 400 for ours.
    # nrx reads a platform map even for cyjs; its own comes with the template repository,
    # which `nrx --init` downloads from GitHub (not reachable here): an empty map will do.
    platform_map = work / "platform_map.yaml"
    platform_map.write_text("type: platform_map\nversion: v1\nplatforms: {}\n")
    conf.write_text(f'NB_API_URL = "{url}"\nEXPORT_DEVICE_ROLES = ["switch", "sensor"]\n'
                    f'EXPORT_CONFIGS = false\nAPI_TIMEOUT = 300\nPLATFORM_MAP = "{platform_map}"\n')
    env = {**os.environ, "NB_API_TOKEN": token}
    start = time.perf_counter()
    done = subprocess.run([str(ensure_nrx()), "-c", str(conf), "-o", "cyjs", "-s", site,
                           "--noconfigs", "-D", str(work / "out")],
                          capture_output=True, text=True, env=env, cwd=work)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"nrx failed ({done.returncode}):\n{done.stdout[-2000:]}"
                         f"\n{done.stderr[-2000:]}")
    out = next((work / "out").glob("*.cyjs"))
    nodes = sum(1 for e in json.loads(out.read_text())["elements"]["nodes"]
                if e["data"].get("type") == "device")
    return {"seconds": seconds, "devices": nodes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="500,2000")
    parser.add_argument("--runs", type=int, default=3, help="dtnlab reads per size (median)")
    parser.add_argument("--nrx-runs", type=int, default=1, help="nrx exports per size (median)")
    parser.add_argument("--no-nrx", action="store_true", help="time dtnlab only")
    parser.add_argument("--probe", action="store_true",
                        help="also time single queries (config context, link peers, cables)")
    args = parser.parse_args()
    url, token = credentials()
    results: dict[int, dict[str, Any]] = {}
    for devices in (int(s) for s in args.sizes.split(",")):
        row: dict[str, Any] = ensure_site(url, token, devices)
        waited = settle(url, token)
        if waited > 1:
            print(f"waited {waited:.0f}s for NetBox's background jobs (search cache) to finish")
        if args.probe:
            row["probe"] = probe_costs(url, token, devices)
        runs = [time_dtnlab(url, token, devices) for _ in range(args.runs)]
        row["dtnlab"] = {**runs[0], "read_s": statistics.median(r["read_s"] for r in runs),
                         "generate_s": statistics.median(r["generate_s"] for r in runs),
                         "read_runs": [round(r["read_s"], 2) for r in runs]}
        if not args.no_nrx:
            nrx_runs = []
            for _ in range(args.nrx_runs):
                with tempfile.TemporaryDirectory() as tmp:
                    nrx_runs.append(time_nrx(url, token, devices, Path(tmp)))
            row["nrx"] = {"seconds": statistics.median(r["seconds"] for r in nrx_runs),
                          "devices": nrx_runs[0]["devices"],
                          "runs": [round(r["seconds"], 1) for r in nrx_runs]}
            row["ratio"] = row["nrx"]["seconds"] / row["dtnlab"]["read_s"]
        results[devices] = row
        report(devices, row)
    settle(url, token)  # leave NetBox idle for the scripts that come after this one
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "netbox.json").write_text(json.dumps(results, indent=1))


def report(devices: int, row: dict[str, Any]) -> None:
    d = row["dtnlab"]
    print(f"{devices:>6} devices: dtnlab read+build {d['read_s']:.2f}s (runs {d['read_runs']}) "
          f"with {d['requests']} requests, {d['links']} links; generate {d['generate_s']:.2f}s "
          f"({d['files']} files)")
    if "nrx" in row:
        n = row["nrx"]
        print(f"{'':>6}          nrx -o cyjs {n['seconds']:.1f}s (runs {n['runs']}, "
              f"{n['devices']} devices): dtnlab is {row['ratio']:.1f}x faster")


if __name__ == "__main__":
    main()
