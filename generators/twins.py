"""Twin configs (one per twinned device) and the lab's runtime.json, read by the runtime alone."""

from __future__ import annotations

from typing import Any

from dtnlab.inventory.model import Device, Lab, Metric, device_topics, uns_path

from .jsonout import dump
from .secrets import API_USER, RUNTIME_USER, LabSecrets
from .uns import aggregate_topics, twin_state_topic

JSON_TYPES = {"float": "number", "int": "integer", "bool": "boolean", "str": "string"}


def metric_schema(metric: Metric) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": JSON_TYPES[metric.type]}
    if metric.type in ("float", "int"):
        if metric.min is not None:
            schema["minimum"] = metric.min
        if metric.max is not None:
            schema["maximum"] = metric.max
    if metric.unit:
        schema["description"] = metric.unit
    return schema


def telemetry_schema(device: Device) -> dict[str, Any]:
    """JSON Schema of one telemetry message: {"ts": epoch s, "seq": n, "values": {...}}."""
    metrics = device.twin.metrics if device.twin else {}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["ts", "values"],
        "properties": {
            "ts": {"type": "number"},
            "seq": {"type": "integer", "minimum": 0},
            "values": {
                "type": "object",
                "properties": {name: metric_schema(m) for name, m in metrics.items()},
                "required": sorted(metrics),
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    }


def twin_config(lab: Lab, device: Device, cells: list[str]) -> dict[str, Any]:
    profile = device.twin
    assert profile is not None  # validation guarantees a profile on every twinned device
    return {
        "id": device.id,
        "name": device.name,
        "netbox_id": device.netbox_id,
        "role": device.role,
        "device_type": device.device_type,
        "platform": device.platform,
        "uns_path": uns_path(lab, device),
        "hierarchy": {"site": device.site, "area": device.area, "line": device.line,
                      "cell": device.cell},
        "topics": device_topics(lab, device),
        "twin_state_topic": twin_state_topic(lab, device.id),
        "mqtt_user": device.id,
        "protocol": profile.protocol,
        "period_s": profile.period_s,
        "heartbeat_s": profile.heartbeat_s,
        "stuck_after": profile.stuck_after,
        "metrics": {name: m.model_dump() for name, m in profile.metrics.items()},
        "schema": telemetry_schema(device),
        "mobile": device.mobile,
        "cells": cells if device.mobile else [],
        "mgmt_address": device.mgmt_address,
    }


def api_users(lab: Lab, secrets: LabSecrets) -> dict[str, dict[str, str]]:
    """Who may log in to the API: role and password hash (the clear passwords stay in secrets/)."""
    return {user: {"role": role, "password_hash": secrets.api_password_hashes[user]}
            for user, role in sorted(lab.settings.api_users.items())}


def runtime_config(lab: Lab, secrets: LabSecrets) -> dict[str, Any]:
    s = lab.settings
    return {
        "lab": lab.name,
        "enterprise": s.enterprise,
        "enterprise_name": s.enterprise_name,
        "broker": {"host": "127.0.0.1", "port": s.mqtt_port, "tls_port": s.mqtts_port,
                   "ca_file": "mosquitto/certs/ca.crt"},
        "api": {"port": s.api_port, "users": api_users(lab, secrets)},
        "runtime_user": RUNTIME_USER,
        "telemetry_qos": s.telemetry_qos,
        "api_user": API_USER,
        "levels": [lv.model_dump() for lv in lab.levels],
        "aggregates": aggregate_topics(lab),
        "twins": [d.id for d in lab.twins],
        "topology": {
            "nodes": [{"id": d.id, "name": d.name, "role": d.role, "twinned": d.twinned,
                       "uns_path": uns_path(lab, d), "mgmt_address": d.mgmt_address,
                       "interfaces": {i.name: list(i.addresses) for i in d.interfaces
                                      if not i.mgmt_only}}
                      for d in lab.devices],
            "links": [{"a": lk.a.device, "a_interface": lk.a.interface, "b": lk.b.device,
                       "b_interface": lk.b.interface, "label": lk.label,
                       "impairment": lk.impairment} for lk in lab.links],
        },
    }


def render(lab: Lab, secrets: LabSecrets) -> dict[str, str]:
    cells_by_line: dict[str, list[str]] = {}
    for level in lab.levels:
        if level.level == "cell" and not level.path.endswith("/_cell"):
            cells_by_line.setdefault(level.path.rsplit("/", 1)[0], []).append(level.path)
    files = {"runtime.json": dump(runtime_config(lab, secrets))}
    for device in lab.twins:
        line_path = "/".join((lab.settings.enterprise, device.site, device.area, device.line))
        cells = cells_by_line.get(line_path, [])
        files[f"twins/{device.id}.json"] = dump(twin_config(lab, device, cells))
    return files
