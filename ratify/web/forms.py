"""Reading text fields from a submitted form (shared by the domains' forms.py)."""

from __future__ import annotations

from starlette.datastructures import FormData


def text_field(form: FormData | None, name: str) -> str:
    """A field's text, trimmed; empty when missing or when a file was sent instead."""
    value = form.get(name, "") if form is not None else ""
    return value.strip() if isinstance(value, str) else ""
