"""Platform map: shipped defaults, interface naming, user overrides and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from dtnlab.generators.platforms import (
    NODE_IMAGE,
    PlatformMapError,
    data_interfaces,
    default_platform_map,
    interface_names,
    load_platform_map,
)
from dtnlab.inventory.model import Device, Interface


def device(platform: str | None, names: list[str], mgmt: str = "mgmt0") -> Device:
    interfaces = [Interface(name=n) for n in names] + [Interface(name=mgmt, mgmt_only=True)]
    return Device(id="sw-01", name="SW-01", role="access-switch", platform=platform,
                  device_type="generic", site="s", area="a", line="l", cell="c",
                  interfaces=tuple(interfaces))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "platforms.yml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("slug", ["linux-iot", "linux-bridge", "linux-router"])
def test_demo_platforms_are_linux_nodes_of_the_dtnlab_image(slug: str) -> None:
    platform = default_platform_map().platforms[slug]
    assert (platform.kind, platform.image, platform.interface_name) == (
        "linux", NODE_IMAGE, "{name}")
    assert platform.inline_emulator


def test_unknown_platform_and_no_platform_use_the_default() -> None:
    pm = default_platform_map()
    assert pm.for_device(device("cisco-ios", [])) == pm.default
    assert pm.for_device(device(None, [])) == pm.default
    assert pm.default.kind == "linux"


def test_load_without_user_file_is_the_shipped_map() -> None:
    assert load_platform_map(None) == default_platform_map()


@pytest.mark.parametrize(
    ("slug", "expected"),
    [
        ("linux-bridge", ["eth1", "eth2", "eth3", "eth10", "eth24", "wlan0"]),
        ("nokia_srlinux", ["e1-1", "e1-2", "e1-3", "e1-4", "e1-5", "e1-6"]),
        ("arista_ceos", ["eth1", "eth2", "eth3", "eth4", "eth5", "eth6"]),
    ],
    ids=["keep-netbox-names", "srlinux-index", "ceos-index"],
)
def test_interface_names_use_natural_order_and_skip_mgmt(slug: str, expected: list[str]) -> None:
    dev = device(slug, ["eth24", "eth10", "eth2", "wlan0", "eth1", "eth3"])
    names = interface_names(default_platform_map().platforms[slug], dev)
    assert [i.name for i in data_interfaces(dev)] == ["eth1", "eth2", "eth3", "eth10", "eth24",
                                                      "wlan0"]
    assert list(names.values()) == expected
    assert "mgmt0" not in names


def test_virtual_and_lag_interfaces_take_no_index() -> None:
    dev = device("nokia_srlinux", ["eth1", "eth2"]).model_copy(update={"interfaces": (
        Interface(name="eth1"), Interface(name="lo0", type="virtual"),
        Interface(name="po1", type="lag"), Interface(name="eth2"))})
    assert interface_names(default_platform_map().platforms["nokia_srlinux"], dev) == {
        "eth1": "e1-1", "eth2": "e1-2"}


def test_user_map_overrides_field_by_field_and_adds_platforms(tmp_path: Path) -> None:
    pm = load_platform_map(write(tmp_path, """
platforms:
  linux-iot:
    image: registry.example/iot-node:2
  cisco-iosxr:
    kind: cisco_xrd
    image: ios-xr/xrd-control-plane:7.11.2
    interface_name: "Gi0-0-0-{index}"
  nokia_srlinux:
    kind: srl
default:
  cmd: sleep 1d
"""))
    iot = pm.platforms["linux-iot"]
    assert (iot.kind, iot.image, iot.cmd) == ("linux", "registry.example/iot-node:2",
                                              "sleep infinity")
    xrd = pm.platforms["cisco-iosxr"]
    assert (xrd.kind, xrd.interface_name, xrd.inline_emulator) == (
        "cisco_xrd", "Gi0-0-0-{index}", False)
    assert pm.platforms["nokia_srlinux"].kind == "nokia_srlinux"  # the alias is normalised
    assert pm.platforms["nokia_srlinux"].image == default_platform_map().platforms[
        "nokia_srlinux"].image
    assert pm.default.cmd == "sleep 1d"
    assert pm.default.image == NODE_IMAGE
    assert default_platform_map().platforms["linux-iot"].image == NODE_IMAGE  # not mutated


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("platforms:\n  new-os:\n    image: x:1\n",
         "platform 'new-os' field 'kind': Field required"),
        ("platforms:\n  linux-iot:\n    imgae: x:1\n",
         "platform 'linux-iot' field 'imgae': unknown field; expected kind, image"),
        ("platforms:\n  linux-iot:\n    interface_name: 'eth{idx}'\n",
         "platform 'linux-iot' field 'interface_name': 'eth{idx}' uses {idx}; only {name} "
         "and {index} are known"),
        ("platforms:\n  linux-iot:\n    interface_name: eth1\n",
         "platform 'linux-iot' field 'interface_name': 'eth1' uses neither {name} nor {index}"),
        ("platforms:\n  arista_ceos:\n    startup_config: missing.j2\n",
         "platform 'arista_ceos' field 'startup_config': template 'missing.j2' not found in "
         "templates/clab/startup/"),
        ("platforms:\n  linux-iot:\n    kind: 'Bad Kind'\n",
         "platform 'linux-iot' field 'kind': 'Bad Kind' is not a containerlab kind name"),
        ("platforms:\n  linux-iot:\n    emulator: maybe\n",
         "platform 'linux-iot' field 'emulator': Input should be 'inline' or 'sidecar'"),
        ("default:\n  image: 'has space'\n",
         "default platform field 'image': 'has space' is not a container image reference"),
        ("platform:\n  linux-iot: {}\n",
         "platform: unknown key; expected type, version, default, platforms"),
        ("version: v2\n", "version: 'v2' is not supported (expected v1)"),
        ("platforms:\n  linux-iot: [1]\n", "platform 'linux-iot': must be a mapping of fields"),
        ("platforms: [\n", "YAML syntax"),
    ],
    ids=["new-without-kind", "typo-field", "unknown-placeholder", "constant-name",
         "missing-template", "bad-kind", "bad-emulator", "bad-image", "unknown-top-key",
         "bad-version", "entry-not-mapping", "yaml-syntax"],
)
def test_bad_user_map_names_platform_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PlatformMapError) as info:
        load_platform_map(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_every_problem_of_a_user_map_is_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(PlatformMapError) as info:
        load_platform_map(write(tmp_path, """
platforms:
  a: {image: 'x:1'}
  b: {kind: linux}
"""))
    assert len(info.value.problems) == 2
    assert "platform 'a' field 'kind'" in str(info.value)
    assert "platform 'b' field 'image'" in str(info.value)


def test_missing_user_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PlatformMapError, match="cannot read"):
        load_platform_map(tmp_path / "nope.yml")
