"""The one Jinja2 environment: templates under templates/, a missing variable is an error."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2

# Beside the generators in both layouts: the repository's templates/ in a checkout (and an
# editable install), the package data dtnlab/templates/ of an installed wheel (pyproject.toml).
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701 - config files, not HTML
    )


def render_template(name: str, **context: object) -> str:
    return environment().get_template(name).render(**context)
