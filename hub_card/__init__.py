"""The Hub cards of VANER's model folders and training-mixture datasets: Jinja templates beside this file,
rendered by `render`, which fails on a field the template uses but the caller did not give (no card ships
with a blank where a value belongs)."""

from __future__ import annotations

from importlib.resources import files

import jinja2

TEMPLATES = ("model_card.md", "dataset_card.md")


def template_text(name: str) -> str:
    """The text of a card template shipped in this package (installed or in the source tree)."""
    if name not in TEMPLATES:
        raise ValueError(f"no card template {name!r}: the templates are {TEMPLATES}")
    return files(__name__).joinpath(name).read_text(encoding="utf-8")


def render(name: str, **fields) -> str:
    """The card `name` with `fields` filled in; jinja2.UndefinedError names a field the template needs and
    `fields` lacks."""
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    return environment.from_string(template_text(name)).render(**fields)
