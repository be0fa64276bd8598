"""Parsing the bargaining-unit form."""

from __future__ import annotations

from starlette.datastructures import FormData

from ratify.rosters.services import UnitFields
from ratify.web.forms import text_field


def parse_unit_form(form: FormData | None) -> UnitFields:
    return UnitFields(
        code=text_field(form, "code").upper(),
        name=text_field(form, "name"),
        employer=text_field(form, "employer"),
        description=text_field(form, "description").replace("\r\n", "\n"),
    )
