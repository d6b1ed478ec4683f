"""The NetBox source: recorded answers (fast), then a real NetBox 4.7 seeded with the demo."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from dtnlab.cli import build_parser, main
from dtnlab.commands.netbox import credentials, netbox_source
from dtnlab.generators.pipeline import render_lab
from dtnlab.inventory.build import ENDPOINTS, build_lab
from dtnlab.inventory.errors import InventoryError
from dtnlab.inventory.model import Lab
from dtnlab.inventory.netbox_client import NetBoxClient, NetBoxError, chunk_ids
from dtnlab.inventory.netbox_export import choose_path, render
from dtnlab.inventory.netbox_shape import cables_from_terminations
from dtnlab.inventory.netbox_source import NetBoxSource
from dtnlab.inventory.source import FileSource, lab_settings
from tests.inventory.conftest import load_replay
from tests.inventory.netbox_objects import MadeObjects

# The replay file netbox_replay/demo.json.gz holds the answers of the real NetBox to a fetch of
# the seeded demo plant (sites plant-aarhus and plant-brno), recorded with RecordingAdapter.
URL = "http://netbox.test"
DEMO_SITES = ["plant-aarhus", "plant-brno"]
# Selections keep to the demo's sites: other tests add sites of their own to the same NetBox.


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the with block ends


# -- recorded answers ------------------------------------------------------------------------
def test_replayed_demo_equals_the_file(demo_valid: Path, replayed: Any) -> None:
    source, adapter = replayed("demo", sites=DEMO_SITES)
    assert source.load() == FileSource(demo_valid).load()
    # status, sites, 7 catalogues, devices, interfaces, cables, locations, racks, addresses,
    # cable ends
    assert len(adapter.requests) == 16
    assert not any("/dcim/devices/" in r and "id=" in r for r in adapter.requests)


def test_replayed_fetch_is_inventory_shaped(replayed: Any) -> None:
    source, _ = replayed("demo", sites=DEMO_SITES)
    data = source.fetch()
    assert set(data) == {"dtnlab", *ENDPOINTS}
    assert data["dtnlab"] == {"lab": "demo-plant", "enterprise_name": "Northwind Foods",
                              "enterprise": "northwind", "mgmt_prefix": "172.30.0.0/24"}
    cable = data["dcim.cables"][0]
    assert {t["object_type"] for t in cable["a_terminations"] + cable["b_terminations"]} == {
        "dcim.interface"}
    text = json.dumps(data)
    assert '"url"' not in text
    # An interface's cable only served to find the cables' ends.
    assert not any("cable" in i for i in data["dcim.interfaces"])


@pytest.mark.parametrize(("status", "body", "expected"), [
    (200, {"netbox-version": "3.7.8"}, "reports version 3.7.8; dtnlab needs NetBox 4.0 or newer"),
    (403, {"detail": "Invalid v2 token"}, "refused the API token (HTTP 403: Invalid v2 token)"),
    (401, {"detail": "Authentication credentials were not provided."}, "HTTP 401"),
], ids=["too-old", "bad-token", "no-token"])
def test_status_problems_are_clear(status: int, body: dict[str, str], expected: str,
                                   replayed: Any) -> None:
    source, _ = replayed({"GET /api/status/?": {"status": status, "body": body}})
    with pytest.raises(NetBoxError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        source.load()


def test_unreachable_netbox_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(NetBoxError, match=f"cannot reach NetBox at {url}: connection refused"):
        NetBoxSource(url, "nbt_x.y").load()
    code = main(["validate", "--netbox", "--netbox-url", url, "--netbox-token", "nbt_x.y"])
    assert code == NetBoxError.exit_code == 3
    assert "cannot reach NetBox" in capsys.readouterr().err


def test_credentials_come_from_flags_environment_or_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "netbox.env").write_text("# written by netboxctl\nNETBOX_URL=http://file:1\n"
                                         "NETBOX_TOKEN=nbt_file.secret\n")
    monkeypatch.setenv("DTN_NETBOX_HOME", str(tmp_path))
    monkeypatch.delenv("NETBOX_URL", raising=False)
    monkeypatch.delenv("NETBOX_TOKEN", raising=False)
    monkeypatch.setenv("DTN_SOURCE", "netbox")
    parser = build_parser()
    args = parser.parse_args(["validate"])
    assert args.source_factory is netbox_source  # DTN_SOURCE=netbox makes --netbox the default
    assert credentials(args) == ("http://file:1", "nbt_file.secret")
    monkeypatch.setenv("NETBOX_TOKEN", "nbt_env.secret")
    args = parser.parse_args(["validate", "--netbox-url", "http://flag:2"])
    assert credentials(args) == ("http://flag:2", "nbt_env.secret")


def test_tls_is_verified_by_default() -> None:
    assert NetBoxClient(URL, "t").session.verify is True
    assert NetBoxClient(URL, "t", ca_file="/etc/ca.pem").session.verify == "/etc/ca.pem"
    assert NetBoxClient(URL, "t", verify=False).session.verify is False


def test_id_filters_are_chunked_below_the_request_line_limit() -> None:
    ids = list(range(100_000, 104_000))
    chunks = list(chunk_ids("device_id", ids))
    assert [i for c in chunks for i in c] == ids
    url = requests.Request("GET", f"{URL}/api/ipam/ip-addresses/",
                           params={"device_id": max(chunks, key=len), "limit": 1000,
                                   "offset": 1000, "ordering": "id"}).prepare().url
    assert url is not None
    assert len(url) < 2100  # gunicorn refuses request lines over 4094


def test_cables_are_rebuilt_from_their_terminations() -> None:
    interfaces = {1: {"id": 1, "name": "eth1", "device": {"id": 1, "name": "sw"}, "type": "x"},
                  3: {"id": 3, "name": "eth1", "device": {"id": 2, "name": "plc"}}}
    terms = [
        {"cable": 6, "cable_end": "B", "termination_type": "dcim.interface", "termination_id": 1},
        {"cable": 6, "cable_end": "A", "termination_type": "dcim.interface", "termination_id": 3},
        {"cable": 5, "cable_end": "A", "termination_type": "dcim.interface", "termination_id": 1},
        {"cable": 5, "cable_end": "B", "termination_type": "dcim.frontport", "termination_id": 7},
    ]
    cables = cables_from_terminations(terms, {6: {"id": 6, "label": "L6", "custom_fields": {
        "dtn_delay": "3ms"}}}, interfaces)
    assert [(c["id"], c["label"]) for c in cables] == [(5, ""), (6, "L6")]
    assert cables[0]["b_terminations"] == [{"object_type": "dcim.frontport", "object_id": 7}]
    assert cables[1]["a_terminations"] == [{"object_type": "dcim.interface", "object_id": 3,
                                            "object": {"id": 3, "name": "eth1",
                                                       "device": {"id": 2, "name": "plc"}}}]
    assert cables[1]["custom_fields"] == {"dtn_delay": "3ms"}


def test_export_format_follows_the_name_and_the_size(tmp_path: Path, replayed: Any) -> None:
    assert choose_path(tmp_path / "a.yaml", 60) == tmp_path / "a.yaml"
    assert choose_path(tmp_path / "a.json", 60) == tmp_path / "a.json"
    assert choose_path(tmp_path / "a.yaml", 5000) == tmp_path / "a.json"
    assert choose_path(tmp_path / "a.yaml", 60, "json") == tmp_path / "a.json"
    source, _ = replayed("demo", sites=DEMO_SITES)
    data = source.fetch()
    shuffled = {k: list(reversed(v)) if isinstance(v, list) else v for k, v in data.items()}
    assert render(data, tmp_path / "a.yaml") == render(shuffled, tmp_path / "b.yaml")
    assert render(data, tmp_path / "a.json") == render(shuffled, tmp_path / "b.json")


def with_prefixes(prefixes: list[str]) -> dict[str, dict[str, Any]]:
    """The demo's recorded answers, as if NetBox held only these prefixes."""
    answers = load_replay("demo")
    key = next(k for k in answers if k.startswith("GET /api/ipam/prefixes/?"))
    rows = [{"id": n, "prefix": p, "status": {"value": "active"}, "role": None,
             "description": ""} for n, p in enumerate(prefixes, 1)]
    answers[key] = {"status": 200, "body": {"count": len(rows), "next": None,
                                            "previous": None, "results": rows}}
    return answers


def test_a_netbox_without_prefixes_checks_no_address(replayed: Any, tmp_path: Path) -> None:
    source, _ = replayed(with_prefixes([]), sites=DEMO_SITES)
    data = source.fetch()
    assert "ipam.prefixes" not in data
    assert "ipam.prefixes" not in render(data, tmp_path / "x.yaml").decode()
    assert len(build_lab(data, lab_settings(data, None, "x", "test"), "test").devices) == 60


def test_a_netbox_with_prefixes_puts_every_address_in_one(replayed: Any, tmp_path: Path) -> None:
    # No prefix holds a lab address: the same errors as a full dump of that NetBox would give.
    source, _ = replayed(with_prefixes(["192.0.2.0/24"]), sites=DEMO_SITES)
    data = source.fetch()
    assert data["ipam.prefixes"] == []
    with pytest.raises(InventoryError) as info:
        source.load()
    assert len(info.value.problems) == 117
    assert str(info.value.problems[0]).endswith("lies outside every prefix in ipam.prefixes")
    export = tmp_path / "export.json"
    export.write_bytes(render(data, export))
    with pytest.raises(InventoryError) as again:
        FileSource(export).load()
    assert again.value.problems == info.value.problems


# -- the real NetBox -------------------------------------------------------------------------
def load(netbox: dict[str, str], **selection: Any) -> Lab:
    return NetBoxSource(netbox["url"], netbox["token"], lab="demo-plant", **selection).load()


def render_both(first: Lab, second: Lab, tmp: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Render two labs into two folders holding the same secrets (passwords, CA, keys)."""
    one = render_lab(first, tmp / "one").files
    shutil.copytree(tmp / "one" / "secrets", tmp / "two" / "secrets")
    return one, render_lab(second, tmp / "two").files


def assert_same_files(one: dict[str, str], two: dict[str, str]) -> None:
    assert sorted(one) == sorted(two)
    different = [path for path in sorted(one) if one[path] != two[path]]
    assert different == []


@pytest.mark.netbox
def test_round_trip_lab_equals_the_file(netbox: dict[str, str], seeded: object,
                                        demo_valid: Path) -> None:
    assert load(netbox, sites=DEMO_SITES) == FileSource(demo_valid).load()


@pytest.mark.netbox
def test_every_generated_file_is_identical(netbox: dict[str, str], seeded: object,
                                           demo_valid: Path, tmp_path: Path) -> None:
    one, two = render_both(FileSource(demo_valid).load(), load(netbox, sites=DEMO_SITES),
                           tmp_path)
    assert len(one) > 60
    assert_same_files(one, two)


@pytest.mark.netbox
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_export_then_generate_gives_the_same_files(
    netbox: dict[str, str], seeded: object, demo_valid: Path, tmp_path: Path, suffix: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("NETBOX_URL", netbox["url"])
    monkeypatch.setenv("NETBOX_TOKEN", netbox["token"])
    out = tmp_path / f"export{suffix}"
    args = ["netbox", "export", "--out", str(out), "--lab", "demo-plant"]
    args += [arg for site in DEMO_SITES for arg in ("--site", site)]
    assert main(args) == 0
    assert "60 devices" in capsys.readouterr().out
    first = out.read_bytes()
    assert main(args) == 0
    assert out.read_bytes() == first  # deterministic
    exported = FileSource(out).load()
    assert exported == FileSource(demo_valid).load()
    assert_same_files(*render_both(FileSource(demo_valid).load(), exported, tmp_path))


@pytest.mark.netbox
def test_cli_reads_netbox_for_validate_generate_and_diff(
    netbox: dict[str, str], seeded: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("NETBOX_URL", netbox["url"])
    monkeypatch.setenv("NETBOX_TOKEN", netbox["token"])
    common = ["--netbox", "--lab", "demo-plant", "--site", "plant-brno",
              "--labs-dir", str(tmp_path)]
    assert main(["validate", *common]) == 0
    assert "demo-plant: 20 devices" in capsys.readouterr().out
    assert main(["generate", *common]) == 0
    assert main(["diff", *common]) == 0  # nothing would change


@pytest.mark.netbox
def test_reading_the_demo_takes_few_requests(netbox: dict[str, str], seeded: object) -> None:
    source = NetBoxSource(netbox["url"], netbox["token"], lab="demo-plant", sites=DEMO_SITES)
    source.load()
    assert source.stats.requests == 16
    tenant = NetBoxSource(netbox["url"], netbox["token"], tenant="northwind", tags=["dtn-twin"])
    lab = tenant.load()
    assert tenant.stats.requests <= 20
    demo = load(netbox, sites=DEMO_SITES)
    assert {d.id for d in lab.devices} == {d.id for d in demo.devices if d.twinned}


@pytest.mark.netbox
def test_a_device_without_rack_is_placed_in_cell_placeholder(
    netbox: dict[str, str], seeded: object
) -> None:
    """The documented rule (inventory/build.py): no rack -> cell `_cell`; no location -> area
    `_area` and line `_line`; a top-level location -> line `_line`."""
    devices = {d.id: d for d in load(netbox, sites=DEMO_SITES).devices}
    assert (devices["aar-core-01"].area, devices["aar-core-01"].line,
            devices["aar-core-01"].cell) == ("_area", "_line", "_cell")
    assert (devices["aar-proc-gw-01"].area, devices["aar-proc-gw-01"].line,
            devices["aar-proc-gw-01"].cell) == ("processing", "_line", "_cell")
    assert (devices["aar-agv-01"].line, devices["aar-agv-01"].cell) == ("line-3", "_cell")


@pytest.mark.netbox
def test_bad_token_is_refused(netbox: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(NetBoxError, match=r"refused the API token \(HTTP 403"):
        NetBoxSource(netbox["url"], "nbt_nosuchkey.nosuchsecret").load()
    code = main(["validate", "--netbox", "--netbox-url", netbox["url"],
                 "--netbox-token", "0123456789abcdef0123456789abcdef01234567"])
    assert code == 3
    assert "refused the API token" in capsys.readouterr().err


@pytest.mark.netbox
@pytest.mark.parametrize(("selection", "expected"), [
    ({"sites": ["no-such-site"]}, "has no site 'no-such-site' (selection is by slug)"),
    ({"tenant": "nobody"}, "has no tenant 'nobody'"),
    ({"sites": ["plant-brno"], "tags": ["dtn-mobile"]},
     "the selection (site plant-brno; tag dtn-mobile) matches no device"),
], ids=["unknown-site", "unknown-tenant", "empty"])
def test_a_selection_that_names_nothing_is_an_error(
    netbox: dict[str, str], seeded: object, selection: dict[str, Any], expected: str
) -> None:
    with pytest.raises(NetBoxError) as err:
        NetBoxSource(netbox["url"], netbox["token"], **selection).load()
    assert expected in str(err.value)


class Api:
    """Small REST helper for building test objects in NetBox."""

    def __init__(self, netbox: dict[str, str]) -> None:
        self.client = NetBoxClient(netbox["url"], netbox["token"])

    def make(self, endpoint: str, **fields: Any) -> int:
        return int(self.client.post(endpoint, [fields])[0]["id"])


@pytest.fixture(scope="module")
def odd_site(netbox: dict[str, str], seeded: object) -> str:
    """A site whose cables end on a patch panel and on a circuit, beside the demo plant."""
    api = Api(netbox)
    site = api.make("dcim.sites", name="Odd Works", slug="odd-works")
    role = api.make("dcim.device-roles", name="Odd", slug="odd", color="ff0000")
    maker = api.make("dcim.manufacturers", name="Odd Maker", slug="odd-maker")
    dtype = api.make("dcim.device-types", model="Odd Box", slug="odd-box", manufacturer=maker)
    rtr = api.make("dcim.devices", name="ODD-RTR-01", role=role, device_type=dtype, site=site)
    panel = api.make("dcim.devices", name="ODD-PP-01", role=role, device_type=dtype, site=site)
    rear = api.make("dcim.rear-ports", device=panel, name="rear1", type="8p8c", positions=1)
    front = api.make("dcim.front-ports", device=panel, name="front1", type="8p8c",
                     rear_port=rear, rear_port_position=1)
    eth = [api.make("dcim.interfaces", device=rtr, name=f"eth{n}", type="1000base-t")
           for n in (1, 2)]
    provider = api.make("circuits.providers", name="Odd Telco", slug="odd-telco")
    ctype = api.make("circuits.circuit-types", name="Odd Fibre", slug="odd-fibre")
    circuit = api.make("circuits.circuits", cid="ODD-0001", provider=provider, type=ctype)
    term = api.make("circuits.circuit-terminations", circuit=circuit, term_side="A",
                    termination_type="dcim.site", termination_id=site)
    api.make("dcim.cables", label="TO-PANEL",
             a_terminations=[{"object_type": "dcim.interface", "object_id": eth[0]}],
             b_terminations=[{"object_type": "dcim.frontport", "object_id": front}])
    api.make("dcim.cables", label="TO-CIRCUIT",
             a_terminations=[{"object_type": "dcim.interface", "object_id": eth[1]}],
             b_terminations=[{"object_type": "circuits.circuittermination", "object_id": term}])
    return "odd-works"


@pytest.mark.netbox
def test_cables_to_a_patch_panel_or_a_circuit_are_reported(
    netbox: dict[str, str], odd_site: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(InventoryError) as err:
        NetBoxSource(netbox["url"], netbox["token"], sites=[odd_site]).load()
    text = str(err.value)
    assert ("dcim.cables[TO-PANEL].b_terminations: ends on a patch panel (dcim.frontport); "
            "only interface-to-interface cables can become lab links") in text
    assert ("dcim.cables[TO-CIRCUIT].b_terminations: ends on a circuit "
            "(circuits.circuittermination)") in text
    code = main(["validate", "--netbox", "--site", odd_site, "--netbox-url", netbox["url"],
                 "--netbox-token", netbox["token"]])
    assert code == InventoryError.exit_code == 2
    assert "TO-PANEL" in capsys.readouterr().err


@pytest.mark.netbox
def test_settings_follow_the_selection(netbox: dict[str, str], seeded: object) -> None:
    data = NetBoxSource(netbox["url"], netbox["token"], sites=["plant-brno"]).fetch()
    settings = lab_settings(data, None, "netbox", "test")
    assert (settings.lab, settings.enterprise) == ("plant-brno", "northwind")
    lab = build_lab(data, settings, "test")
    assert {d.site for d in lab.devices} == {"plant-brno"}


@pytest.fixture
def lab_ports(netbox: dict[str, str], seeded: object) -> Iterator[dict[str, Any]]:
    """Tag `dtn-lab-port` on both ends of two Brno cables and on one end of a third."""
    api = MadeObjects(netbox)
    # Deleting the tag afterwards untags its interfaces.
    tag = api.make("extras.tags", name="dtn-lab-port", slug="dtn-lab-port", color="00aa00")
    cables = api.client.list_all("dcim.cables", {"site": "plant-brno", "ordering": "id"})[:3]
    ends = [[t["object"] for t in c["a_terminations"] + c["b_terminations"]] for c in cables]
    tagged = ends[0] + ends[1] + ends[2][:1]
    interfaces = {i["id"]: i for i in api.client.list_all(
        "dcim.interfaces", {"id": [e["id"] for e in tagged]})}
    api.client.patch("dcim.interfaces", [
        {"id": i, "tags": [t["id"] for t in interfaces[i]["tags"]] + [tag]} for i in interfaces])
    try:
        yield {"tagged": {(e["device"]["name"], e["name"]) for e in tagged},
               "linked": {frozenset((e["device"]["name"], e["name"]) for e in pair)
                          for pair in ends[:2]}}
    finally:
        api.delete_all()


@pytest.mark.netbox
def test_interface_tags_select_the_lab_interfaces(
    netbox: dict[str, str], lab_ports: dict[str, Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    lab = load(netbox, sites=["plant-brno"], interface_tags=["dtn-lab-port"])
    full = load(netbox, sites=["plant-brno"])
    assert [d.id for d in lab.devices] == [d.id for d in full.devices]  # devices: all of them
    names = {d.id: d.name for d in lab.devices}
    assert {(names[d.id], i.name) for d in lab.devices for i in d.interfaces} == lab_ports[
        "tagged"]
    # A cable is a link when both its ends were selected; the half-tagged one is outside.
    assert {frozenset({(names[lk.a.device], lk.a.interface), (names[lk.b.device], lk.b.interface)})
            for lk in lab.links} == lab_ports["linked"]
    # The CLI's --interface-tag, and an export of that selection, give the same lab.
    monkeypatch.setenv("NETBOX_URL", netbox["url"])
    monkeypatch.setenv("NETBOX_TOKEN", netbox["token"])
    out = tmp_path / "ports.yaml"
    assert main(["netbox", "export", "--site", "plant-brno", "--interface-tag", "dtn-lab-port",
                 "--lab", "demo-plant", "--out", str(out)]) == 0
    assert FileSource(out).load() == lab
    assert main(["validate", "--netbox", "--site", "plant-brno", "--lab", "demo-plant",
                 "--interface-tag", "dtn-lab-port"]) == 0
    assert "20 devices (" in capsys.readouterr().out
