"""Config contexts merged the way NetBox renders them: assignments, weights, local data; then
the same contexts in a real NetBox, whose rendering must equal dtnlab's merge."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dtnlab.inventory.build import LabBuilder
from dtnlab.inventory.model import Settings
from dtnlab.inventory.netbox_source import NetBoxSource
from tests.inventory.netbox_objects import MadeObjects

CATALOGUE: dict[str, list[dict[str, Any]]] = {
    "extras.tags": [{"id": 1, "name": "Hot", "slug": "hot"}, {"id": 2, "name": "Cold",
                                                             "slug": "cold"}],
    "dcim.sites": [{"id": 1, "name": "Works", "slug": "works"},
                   {"id": 2, "name": "Other", "slug": "other"}],
    "dcim.locations": [
        {"id": 10, "name": "Area", "slug": "area", "site": 1},
        {"id": 11, "name": "Line", "slug": "line", "site": 1, "parent": 10},
        {"id": 12, "name": "Bay", "slug": "bay", "site": 1, "parent": 11},
    ],
    "dcim.racks": [{"id": 50, "name": "R1", "site": 1, "location": 12}],
    "dcim.platforms": [{"id": 20, "name": "Box OS", "slug": "box-os"}],
    "dcim.device-roles": [{"id": 30, "name": "Sensor", "slug": "sensor"}],
    "dcim.device-types": [{"id": 40, "model": "Probe", "slug": "probe"}],
}


def device(**fields: Any) -> dict[str, Any]:
    return {"name": "dev", "role": 30, "device_type": 40, "site": 1, **fields}


def context(name: str, data: dict[str, Any], weight: int = 1000, **assigned: Any) -> dict[str, Any]:
    return {"name": name, "weight": weight, "data": data, **assigned}


def merged(contexts: list[dict[str, Any]], dev: dict[str, Any]) -> dict[str, Any]:
    data = {**CATALOGUE, "extras.config-contexts": contexts, "dcim.devices": [dev]}
    return LabBuilder(data, Settings(lab="t")).merged_context(dev)


@pytest.mark.parametrize(("tags", "applies"), [
    (["hot"], True), ([{"id": 1, "name": "Hot", "slug": "hot"}], True), (["cold"], False),
    ([], False),
], ids=["slug", "nested", "other-tag", "untagged"])
def test_a_context_assigned_by_tag(tags: list[Any], applies: bool) -> None:
    hot = context("hot", {"hot": True}, tags=["hot"])
    assert merged([hot], device(tags=tags)) == ({"hot": True} if applies else {})


@pytest.mark.parametrize(("placement", "expected"), [
    ({"location": 12}, ["area", "line", "bay"]),
    ({"rack": 50}, ["area", "line", "bay"]),  # the rack's location and its ancestors
    ({"location": 11}, ["area", "line"]),
    ({"location": "area"}, ["area"]),
    ({}, []),
], ids=["in-bay", "in-rack-of-bay", "in-line", "by-slug", "no-location"])
def test_a_location_assignment_reaches_every_location_below(
        placement: dict[str, Any], expected: list[str]) -> None:
    contexts = [context(name, {"seen": {name: True}}, locations=[ref])
                for name, ref in (("area", 10), ("line", "line"), ("bay", {"id": 12}))]
    assert sorted(merged(contexts, device(**placement)).get("seen", {})) == sorted(expected)


def test_a_context_assigned_by_platform_or_site() -> None:
    contexts = [context("os", {"os": True}, platforms=["box-os"]),
                context("other-site", {"other": True}, sites=[2])]
    assert merged(contexts, device(platform=20)) == {"os": True}
    assert merged(contexts, device()) == {}
    assert merged(contexts, device(site="other")) == {"other": True}


def test_every_assigned_field_must_match_and_any_value_in_one() -> None:
    both = context("both", {"both": True}, sites=[1, 2], platforms=[20])
    assert merged([both], device(platform=20)) == {"both": True}
    assert merged([both], device(site=2, platform="box-os")) == {"both": True}
    assert merged([both], device()) == {}  # the site matches, the platform does not


def test_weights_order_the_merge_then_names_and_lists_are_replaced() -> None:
    contexts = [
        context("heavy", {"level": "heavy", "list": [3], "deep": {"b": 2}}, weight=2000),
        context("b-light", {"level": "b-light", "list": [1, 2], "deep": {"a": 1, "b": 1}},
                weight=100),
        context("a-light", {"level": "a-light", "deep": {"c": 0}}, weight=100),
        context("off", {"level": "off"}, weight=9000, is_active=False),
    ]
    assert merged(contexts, device()) == {"level": "heavy", "list": [3],
                                          "deep": {"a": 1, "b": 2, "c": 0}}
    # Same weight: by name, so b-light's level wins over a-light's.
    assert merged(contexts[1:], device())["level"] == "b-light"


def test_local_context_data_goes_on_top_of_every_context() -> None:
    contexts = [context("heavy", {"dtnlab": {"period_s": 5, "heartbeat_s": 15}}, weight=9000)]
    local = {"dtnlab": {"period_s": 1}, "own": [1]}
    assert merged(contexts, device(local_context_data=local)) == {
        "dtnlab": {"period_s": 1, "heartbeat_s": 15}, "own": [1]}


# -- the same contexts in a real NetBox ------------------------------------------------------
@pytest.fixture(scope="module")
def context_site(netbox: dict[str, str], seeded: object) -> Iterator[str]:
    """A site whose devices get config contexts by tag, location, platform and local data.

    After the demo plant (`seeded`), whose NetBox ids other tests compare with the file's.
    """
    nb = MadeObjects(netbox)
    try:
        tag = nb.make("extras.tags", name="ctx-hot", slug="ctx-hot", color="ff0000")
        site = nb.make("dcim.sites", name="Ctx Works", slug="ctx-works")
        area = nb.make("dcim.locations", name="Ctx Area", slug="ctx-area", site=site)
        line = nb.make("dcim.locations", name="Ctx Line", slug="ctx-line", site=site,
                       parent=area)
        bay = nb.make("dcim.locations", name="Ctx Bay", slug="ctx-bay", site=site, parent=line)
        platform = nb.make("dcim.platforms", name="Ctx OS", slug="ctx-os")
        role = nb.make("dcim.device-roles", name="Ctx Role", slug="ctx-role", color="00ff00")
        maker = nb.make("dcim.manufacturers", name="Ctx Maker", slug="ctx-maker")
        dtype = nb.make("dcim.device-types", model="Ctx Probe", slug="ctx-probe",
                        manufacturer=maker)
        for name, data, weight, assigned in [
            ("ctx-site", {"dtnlab": {"period_s": 1, "metrics": {"t": {"unit": "C"}}},
                          "level": "site", "list": [1]}, 100, {"sites": [site]}),
            ("ctx-area", {"level": "area", "deep": {"a": 1, "b": 1}}, 200, {"locations": [area]}),
            ("ctx-bay", {"level": "bay", "deep": {"b": 2}}, 200, {"locations": [bay]}),
            ("ctx-platform", {"dtnlab": {"heartbeat_s": 30}, "list": [2, 3]}, 300,
             {"platforms": [platform]}),
            ("ctx-tag", {"level": "tag", "tagged": {"by": "tag"}}, 50, {"tags": ["ctx-hot"]}),
            ("ctx-both", {"both": True}, 400, {"sites": [site], "platforms": [platform]}),
            ("ctx-off", {"level": "off"}, 999, {"sites": [site], "is_active": False}),
        ]:
            nb.make("extras.config-contexts", name=name, data=data, weight=weight, **assigned)
        common = {"role": role, "device_type": dtype, "site": site}
        nb.make("dcim.devices", name="CTX-BAY", location=bay, platform=platform, tags=[tag],
                **common)
        nb.make("dcim.devices", name="CTX-AREA", location=area, **common,
                local_context_data={"dtnlab": {"period_s": 9}, "deep": {"c": 3}})
        nb.make("dcim.devices", name="CTX-LINE", location=line, platform=platform, **common)
        nb.make("dcim.devices", name="CTX-SITE", tags=[tag], **common)
        yield "ctx-works"
    finally:
        nb.delete_all()


@pytest.mark.netbox
def test_the_merge_equals_netbox_rendering(netbox: dict[str, str], context_site: str) -> None:
    data = NetBoxSource(netbox["url"], netbox["token"], sites=[context_site]).fetch()
    builder = LabBuilder(data, Settings(lab="t"))
    rendered = {d["name"]: d["config_context"] for d in data["dcim.devices"]}
    ours = {d["name"]: builder.merged_context({k: v for k, v in d.items()
                                               if k != "config_context"})
            for d in data["dcim.devices"]}
    assert ours == rendered
    # The cases are what they claim: ancestors, weights by name, lists replaced, local on top.
    assert rendered["CTX-BAY"]["level"] == "bay"
    assert rendered["CTX-BAY"]["deep"] == {"a": 1, "b": 2}
    assert rendered["CTX-BAY"]["list"] == [2, 3]
    assert rendered["CTX-BAY"]["both"] is True
    assert rendered["CTX-AREA"]["dtnlab"]["period_s"] == 9
    assert rendered["CTX-LINE"]["level"] == "area"
    assert rendered["CTX-SITE"]["level"] == "site"  # the tag's (weight 50) goes first
    assert rendered["CTX-SITE"]["tagged"] == {"by": "tag"}
    assert "tagged" not in rendered["CTX-LINE"]
