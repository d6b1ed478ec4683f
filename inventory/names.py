"""Turn NetBox names into slugs that are safe as MQTT topic levels, file and node names."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# MQTT wildcards and the topic separator, plus `$` (reserved for broker topics).
FORBIDDEN_CHARS = frozenset("/+#$")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_SUSPECT = re.compile(r"[/+#$\x00-\x1f\x7f]|^\s|\s$|^[^a-zA-Z0-9]*$")


@lru_cache(maxsize=65536)
def _problem(name: str) -> str | None:
    if _SUSPECT.search(name) is None:
        return None  # the common case, decided by one regex search
    return _describe(name)


def name_problem(name: object) -> str | None:
    """Return why `name` cannot become a topic level or file name, or None when it can."""
    return _problem(name) if isinstance(name, str) and name else _describe(name)


def _describe(name: object) -> str | None:
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
        return f"{name!r} has no letter or digit that a slug (a-z, 0-9) can keep"
    return None


def slugify(name: str) -> str:
    """Lower-case ASCII: accents dropped (Île -> ile, Kühl -> kuhl), every run of other
    characters becomes one dash, no leading or trailing dash."""
    if not name.isascii():
        name = "".join(c for c in unicodedata.normalize("NFKD", name)
                       if not unicodedata.combining(c))
    return _NOT_SLUG.sub("-", name.lower()).strip("-")
