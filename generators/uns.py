"""Unified Namespace topic map: every device's topics and the aggregation topics per level."""

from __future__ import annotations

from dtnlab.inventory.model import AGGREGATE_LEVEL, Lab, device_topics, uns_path

from .jsonout import dump
from .secrets import LabSecrets

TWIN_STATE_LEVEL = "_twin"


def twin_state_topic(lab: Lab, device_id: str) -> str:
    """Where the runtime publishes a twin's state: outside the device's own subtree."""
    return f"{lab.settings.enterprise}/{TWIN_STATE_LEVEL}/{device_id}/state"


def aggregate_topics(lab: Lab) -> dict[str, str]:
    return {
        level.path: f"{level.path}/{AGGREGATE_LEVEL}"
        for level in lab.levels
        if level.level in ("site", "area", "line")
    }


def render(lab: Lab, secrets: LabSecrets) -> dict[str, str]:
    devices = {
        d.id: {
            "path": uns_path(lab, d),
            "topics": device_topics(lab, d),
            "twin_state": twin_state_topic(lab, d.id),
        }
        for d in lab.twins
    }
    topic_map = {
        "enterprise": lab.settings.enterprise,
        "levels": [lv.model_dump() for lv in lab.levels],
        "devices": devices,
        "aggregates": aggregate_topics(lab),
    }
    return {"uns/topics.json": dump(topic_map)}
