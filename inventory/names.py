"""Turn NetBox names into slugs that are safe as MQTT topic levels, file and node names."""

from __future__ import annotations

import re

# MQTT wildcards and the topic separator, plus `$` (reserved for broker topics).
FORBIDDEN_CHARS = frozenset("/+#$")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def name_problem(name: object) -> str | None:
    """Return why `name` cannot become a topic level or file name, or None when it can."""
    if not isinstance(name, str) or name == "":
        return "is empty"
    if name != name.strip():
        return f"{name!r} has leading or trailing spaces"
    bad = sorted({c for c in name if c in FORBIDDEN_CHARS})
    if bad:
        return f"{name!r} contains {' '.join(bad)}, which cannot appear in an MQTT topic level"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return f"{name!r} contains a control character"
    if not slugify(name):
        return f"{name!r} has no letter or digit to make a slug from"
    return None


def slugify(name: str) -> str:
    """Lower-case, every run of other characters becomes one dash; no leading/trailing dash."""
    return _NOT_SLUG.sub("-", name.lower()).strip("-")
