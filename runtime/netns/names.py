"""Deterministic names: one namespace per node, interface names that fit Linux's 15 characters."""

from __future__ import annotations

import hashlib
import re

IFNAMSIZ = 15  # Linux interface names: at most 15 characters
NS_NAME_MAX = 60  # namespace names are file names under /run/netns; kept short to stay readable
MARKER_PREFIX = "dtnlab:"  # alias of each namespace's `lo`: which lab owns the namespace
BRIDGE = "br0"
_VALID_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_RESERVED_IFNAMES = {"lo", BRIDGE, ".", ".."}


def short_hash(text: str, length: int = 6) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def lab_prefix(lab: str) -> str:
    """`dtn-<lab>-`: every namespace of the lab starts with it (long lab names are hashed)."""
    if len(lab) > 24:
        lab = f"{lab[:17]}-{short_hash(lab)}"
    return f"dtn-{lab}-"


def namespace_name(lab: str, node_id: str) -> str:
    """`dtn-<lab>-<node id>`; a node id that would make it too long is cut and hashed."""
    prefix = lab_prefix(lab)
    room = NS_NAME_MAX - len(prefix)
    if len(node_id) > room:
        node_id = f"{node_id[:room - 7]}-{short_hash(node_id)}"
    return prefix + node_id


def lab_marker(lab: str) -> str:
    return f"{MARKER_PREFIX}{lab}"


def host_link_name(lab: str) -> str:
    """The one interface a lab puts in the host's namespace (the host's way to its broker)."""
    return f"dtnh-{short_hash(lab, 8)}"


def interface_name(netbox_name: str, taken: set[str]) -> str:
    """The name of a NetBox interface inside its node's namespace.

    Kept as is when Linux accepts it (eth1, wlan0); otherwise (GigabitEthernet0/1, names over 15
    characters, clashes) `if-<hash>`. The chosen name is added to `taken`.
    """
    name = netbox_name
    if not _VALID_IFNAME.match(name) or name in _RESERVED_IFNAMES or name in taken:
        salt = 0
        name = f"if-{short_hash(netbox_name, 8)}"
        while name in taken:
            salt += 1
            name = f"if-{short_hash(f'{netbox_name}#{salt}', 8)}"
    taken.add(name)
    return name
