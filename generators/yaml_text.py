"""Fast, deterministic block YAML for large generated files (PyYAML's emitter is too slow)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import yaml


class _Scalars:
    """YAML text of scalars: plain when YAML reads it back as the same string, else quoted."""

    # Safe as a plain scalar in block context: no indicator first, no ": " or " #" inside,
    # no ':' or space last.
    _PLAIN = re.compile(r"^[A-Za-z0-9_./](?:[A-Za-z0-9_./:@+=,~%-]| (?!#))*(?<![: ])$")
    # YAML 1.2 readers (containerlab's Go parser) also take these as numbers; PyYAML does not.
    _NUMBER_1_2 = re.compile(r"^([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?"
                             r"|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$")
    _STR = "tag:yaml.org,2002:str"
    # JSON leaves these raw, but YAML folds them as line breaks inside a quoted scalar.
    _BREAKS = str.maketrans({"\u0085": "\\N", "\u2028": "\\L", "\u2029": "\\P",
                             "\ufeff": "\\ufeff"})

    def __init__(self) -> None:
        self.resolver = yaml.resolver.Resolver()

    def _resolve(self, text: str) -> str:
        tag: str = self.resolver.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
        return tag

    def text(self, value: object) -> str:
        if isinstance(value, float) and not math.isfinite(value):
            return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
        if value is None or isinstance(value, bool | int | float):
            return json.dumps(value)
        text = str(value)
        plain = (self._PLAIN.match(text) and ": " not in text
                 and not self._NUMBER_1_2.match(text)
                 and self._resolve(text) == self._STR)
        if plain:
            return text
        return json.dumps(text, ensure_ascii=False).translate(self._BREAKS)


def to_yaml(document: dict[str, Any]) -> str:
    """Block-style YAML with sorted keys, as yaml.safe_dump(sort_keys=True) would write it.

    PyYAML's emitter spends 6 s on a 10,000-device topology; this writes the same data in a
    fraction of that, and yaml.safe_load reads it back unchanged (the tests check both ways).
    """
    text_of = _Scalars().text
    strings: dict[str, str] = {}  # labels and binds repeat across thousands of nodes
    lines: list[str] = []
    append = lines.append

    # The emitter is on generate's critical path (a 10,000-device topology has 500,000
    # scalars): scalars are looked up inline and dicts and lists emitted by their own loops.
    def text(value: object) -> str:
        if type(value) is str:
            found = strings.get(value)
            if found is None:
                found = strings[value] = text_of(value)
            return found
        return text_of(value)

    def emit_dict(node: dict[Any, Any], pad: str, indent: int) -> None:
        for key in sorted(node):
            value = node[key]
            if isinstance(value, dict):
                append(f"{pad}{text(key)}:" if value else f"{pad}{text(key)}: {{}}")
                emit_dict(value, pad + "  ", indent + 2)
            elif isinstance(value, list):
                append(f"{pad}{text(key)}:" if value else f"{pad}{text(key)}: []")
                emit_list(value, pad, indent)  # like PyYAML: items at the key's indent
            else:
                append(f"{pad}{text(key)}: {text(value)}")

    def emit_list(node: list[Any], pad: str, indent: int) -> None:
        inner, inner_pad = indent + 2, pad + "  "
        for item in node:
            if isinstance(item, dict | list) and item:
                start = len(lines)
                if isinstance(item, dict):
                    emit_dict(item, inner_pad, inner)
                else:
                    emit_list(item, inner_pad, inner)
                lines[start] = f"{pad}- {lines[start][inner:]}"
            elif isinstance(item, dict | list):
                append(f"{pad}- {{}}" if isinstance(item, dict) else f"{pad}- []")
            else:
                append(f"{pad}- {text(item)}")

    emit_dict(document, "", 0)
    return "\n".join(lines) + "\n"
