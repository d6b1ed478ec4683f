"""The Lab model: the one contract between inventory sources, generators and the runtime."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MetricType = Literal["float", "int", "bool", "str"]
Protocol = Literal["mqtt", "opcua"]
ApiRole = Literal["viewer", "operator", "admin"]  # each may do what the ones before it may
# A login name: it lands in tokens, the audit log and file keys, so no spaces or control chars.
ApiUserName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")]
DEFAULT_API_USERS: dict[str, ApiRole] = {"admin": "admin", "operator": "operator",
                                         "viewer": "viewer"}
TOPIC_KINDS = ("telemetry", "command", "status", "alert")
AGGREGATE_LEVEL = "_aggregate"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Metric(Frozen):
    """One telemetry value of a device, with its plausible range and health thresholds."""

    type: MetricType = "float"
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    normal: tuple[float, float] | None = None
    warning: tuple[float, float] | None = None


class TwinProfile(Frozen):
    """The `dtnlab` key of a device's rendered config context."""

    model_config = ConfigDict(frozen=True, extra="allow")

    period_s: float = Field(default=5.0, gt=0)
    heartbeat_s: float = Field(default=15.0, gt=0)
    stuck_after: int = Field(default=20, ge=0)
    protocol: Protocol = "mqtt"
    metrics: dict[str, Metric] = Field(default_factory=dict)


class Interface(Frozen):
    name: str
    type: str = "other"
    mgmt_only: bool = False
    addresses: tuple[str, ...] = ()


class Device(Frozen):
    """A device placed in the ISA-95 hierarchy; `id` is its slug, unique in the lab."""

    id: str
    name: str
    netbox_id: int | None = None
    role: str
    platform: str | None = None
    manufacturer: str | None = None
    device_type: str
    serial: str = ""
    tags: tuple[str, ...] = ()
    site: str
    area: str
    line: str
    cell: str
    interfaces: tuple[Interface, ...] = ()
    mgmt_address: str | None = None
    twinned: bool = False
    mobile: bool = False
    twin: TwinProfile | None = None


class LinkEnd(Frozen):
    device: str
    interface: str


class Link(Frozen):
    a: LinkEnd
    b: LinkEnd
    label: str = ""
    impairment: dict[str, str] = Field(default_factory=dict)


class Level(Frozen):
    """One node of the hierarchy above devices: a site, area, line or cell."""

    level: Literal["site", "area", "line", "cell"]
    path: str
    name: str


class Settings(Frozen):
    """Lab-wide settings, from the inventory file's `dtnlab` key and the command line."""

    lab: str
    enterprise_name: str = "Enterprise"
    enterprise: str = "enterprise"
    twin_tag: str = "dtn-twin"
    mobile_tag: str = "dtn-mobile"
    mqtt_port: int = 11883
    mqtts_port: int = 18883
    api_port: int = 8088
    telemetry_qos: Literal[0, 1] = 0
    mgmt_prefix: str | None = None
    # Who may log in to the API, with their roles; passwords are generated into the secrets.
    api_users: dict[ApiUserName, ApiRole] = Field(
        default_factory=lambda: dict(DEFAULT_API_USERS), min_length=1)
    database: Literal["postgres", "timescaledb"] = "postgres"  # the containerlab database node


class Lab(Frozen):
    settings: Settings
    levels: tuple[Level, ...]
    devices: tuple[Device, ...]
    links: tuple[Link, ...]

    @property
    def name(self) -> str:
        return self.settings.lab

    @property
    def twins(self) -> tuple[Device, ...]:
        return tuple(d for d in self.devices if d.twinned)


def uns_path(lab: Lab, device: Device) -> str:
    """Return the device's Unified Namespace path, enterprise first."""
    return "/".join(
        (lab.settings.enterprise, device.site, device.area, device.line, device.cell, device.id)
    )


def device_topics(lab: Lab, device: Device) -> dict[str, str]:
    base = uns_path(lab, device)
    return {kind: f"{base}/{kind}" for kind in TOPIC_KINDS}
