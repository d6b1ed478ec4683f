"""Platform map (NetReplica-style): NetBox platform slug -> lab kind, image, interface naming."""

from __future__ import annotations

import re
import string
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from dtnlab.inventory.model import Device, Interface

from .clab_schema import node_errors
from .jinja import TEMPLATES

DEFAULTS_FILE = Path(__file__).resolve().with_name("platforms.yml")
STARTUP_TEMPLATES = "clab/startup"  # under templates/
NODE_IMAGE = "dtnlab/node:0.1.0"  # the image that runs dtnlab's emulator, engine and API
NODE_UID = 1000  # its user `dtn` (uid and gid), as clab/Dockerfile creates it
INTERFACE_FIELDS = frozenset({"name", "index"})
# NetBox interface types that are never cabled, so they take no index among data interfaces.
NON_DATA_TYPES = frozenset({"virtual", "lag", "bridge"})
# containerlab accepts these short kind names at run time, but its JSON schema lists only the
# canonical ones: normalising here keeps generated topologies valid against the schema.
KIND_ALIASES = {
    "srl": "nokia_srlinux",
    "ceos": "arista_ceos",
    "crpd": "juniper_crpd",
    "vr-sros": "nokia_sros",
    "vr-vmx": "juniper_vmx",
    "vr-veos": "arista_veos",
    "xrd": "cisco_xrd",
}
_KIND = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_DIGITS = re.compile(r"(\d+)")


class PlatformMapError(ValueError):
    """A platform map file is unusable; every problem names the platform and the field."""

    exit_code = 2  # the CLI's, as for an inventory that does not validate

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join([f"{source}: platform map is invalid"]
                                   + [f"  {p}" for p in problems]))


class Platform(BaseModel):
    """How one NetBox platform becomes a containerlab node."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    image: str
    type: str | None = None
    interface_name: str = "{name}"
    startup_config: str | None = None
    cmd: str | None = None
    emulator: Literal["inline", "sidecar"] | None = None

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        kind = KIND_ALIASES.get(value.strip().lower(), value.strip().lower())
        if not _KIND.match(kind):
            raise ValueError(f"{value!r} is not a containerlab kind name")
        return kind

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        if not value or any(c.isspace() for c in value):
            raise ValueError(f"{value!r} is not a container image reference")
        return value

    @field_validator("interface_name")
    @classmethod
    def _interface_name(cls, value: str) -> str:
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a name template: {exc}") from None
        unknown = sorted(fields - INTERFACE_FIELDS)
        if unknown:
            raise ValueError(f"{value!r} uses {', '.join('{' + f + '}' for f in unknown)}; "
                             "only {name} and {index} are known")
        if not fields:
            # A constant would give every data interface of a device the same name.
            raise ValueError(f"{value!r} uses neither {{name}} nor {{index}}")
        try:
            value.format(name="eth1", index=1)
        except (ValueError, KeyError, IndexError) as exc:
            raise ValueError(f"{value!r} is not a name template: {exc}") from None
        return value

    @field_validator("startup_config")
    @classmethod
    def _startup_config(cls, value: str | None) -> str | None:
        if value is not None and not (TEMPLATES / STARTUP_TEMPLATES / value).is_file():
            raise ValueError(f"template {value!r} not found in templates/{STARTUP_TEMPLATES}/")
        return value

    def node_settings(self) -> dict[str, Any]:
        """The settings this platform gives a containerlab node."""
        settings = {"kind": self.kind, "image": self.image, "type": self.type, "cmd": self.cmd}
        return {k: v for k, v in settings.items() if v is not None}

    @property
    def inline_emulator(self) -> bool:
        """True when a twinned device's node runs the emulator itself (no sidecar node)."""
        return self.emulator == "inline" if self.emulator else self.kind == "linux"


class PlatformMap(BaseModel):
    """Every known platform plus the default for platforms without an entry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: Platform
    platforms: dict[str, Platform]

    def for_device(self, device: Device) -> Platform:
        if device.platform is None:
            return self.default
        return self.platforms.get(device.platform, self.default)


def natural_key(name: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key that puts eth2 before eth10 (and Ethernet1/2 before Ethernet1/10)."""
    parts = (p for p in _DIGITS.split(name) if p)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def data_interfaces(device: Device) -> list[Interface]:
    """The device's interfaces that can carry lab links, in index order (1-based)."""
    own = [i for i in device.interfaces if not i.mgmt_only and i.type not in NON_DATA_TYPES]
    return sorted(own, key=lambda i: (natural_key(i.name), i.name))


def interface_names(platform: Platform, device: Device) -> dict[str, str]:
    """Map each data interface's NetBox name to its name in the lab."""
    return {
        iface.name: platform.interface_name.format(name=iface.name, index=index)
        for index, iface in enumerate(data_interfaces(device), start=1)
    }


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise PlatformMapError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
    except yaml.YAMLError as exc:
        raise PlatformMapError(str(path), [f"YAML syntax: {exc}"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PlatformMapError(str(path), ["top level must be a mapping"])
    problems = []
    for key in sorted(set(data) - {"type", "version", "default", "platforms"}):
        problems.append(f"{key}: unknown key; expected type, version, default, platforms")
    if data.get("type", "platform_map") != "platform_map":
        problems.append(f"type: {data['type']!r} is not 'platform_map'")
    if data.get("version", "v1") != "v1":
        problems.append(f"version: {data['version']!r} is not supported (expected v1)")
    for key in ("default", "platforms"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            problems.append(f"{key}: must be a mapping")
    platforms = data.get("platforms")
    for slug, entry in (platforms.items() if isinstance(platforms, dict) else ()):
        if not isinstance(entry, dict):
            problems.append(f"platform {slug!r}: must be a mapping of fields")
    if problems:
        raise PlatformMapError(str(path), problems)
    return data


def _merge(base: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    """User values over shipped values, field by field, for `default` and each platform."""
    merged: dict[str, Any] = {"default": {**(base.get("default") or {}),
                                          **(user.get("default") or {})}}
    platforms = {slug: dict(entry) for slug, entry in (base.get("platforms") or {}).items()}
    for slug, entry in (user.get("platforms") or {}).items():
        platforms[str(slug)] = {**platforms.get(str(slug), {}), **entry}
    merged["platforms"] = platforms
    return merged


def _validate(raw: dict[str, Any], source: str) -> PlatformMap:
    problems: list[str] = []
    default: Platform | None = None
    try:
        default = Platform.model_validate(raw["default"])
    except ValidationError as exc:
        problems.extend(_describe("default platform", exc))
    platforms: dict[str, Platform] = {}
    for slug, entry in sorted(raw["platforms"].items()):
        try:
            platforms[slug] = Platform.model_validate(entry)
        except ValidationError as exc:
            problems.extend(_describe(f"platform {slug!r}", exc))
    # containerlab's schema knows each kind's node types: check what a node would get.
    for what, platform in [("default platform", default), *(
            (f"platform {slug!r}", p) for slug, p in platforms.items())]:
        errors = node_errors(platform.node_settings()) if platform is not None else []
        problems.extend(f"{what} field {'/'.join(e.path) or '<entry>'!r}: {e.message} "
                        "(containerlab's schema)" for e in errors)
    if problems or default is None:
        raise PlatformMapError(source, problems)
    return PlatformMap(default=default, platforms=platforms)


def _describe(what: str, exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "<entry>"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field; expected " + ", ".join(Platform.model_fields)
        lines.append(f"{what} field {field!r}: {message}")
    return lines


@cache
def default_platform_map() -> PlatformMap:
    """The shipped platform map, generators/platforms.yml."""
    return _validate(_merge(_read(DEFAULTS_FILE), {}), str(DEFAULTS_FILE))


def load_platform_map(user_file: Path | None) -> PlatformMap:
    """Load the shipped platform map with `user_file` (if any) merged over it field by field.

    Args:
        user_file: a YAML file shaped like generators/platforms.yml, or None for the defaults.

    Returns:
        The validated map.

    Raises:
        PlatformMapError: naming the file, and each bad platform and field.
    """
    if user_file is None:
        return default_platform_map()
    return _validate(_merge(_read(DEFAULTS_FILE), _read(user_file)), str(user_file))
