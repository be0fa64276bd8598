"""Parsing the bargaining-unit form and the eligibility preview's manual decisions."""

from __future__ import annotations

from starlette.datastructures import FormData

from ratify.errors import N_, BadRequest
from ratify.rosters.services import UnitFields
from ratify.web.forms import text_field


def parse_unit_form(form: FormData | None) -> UnitFields:
    return UnitFields(
        code=text_field(form, "code").upper(),
        name=text_field(form, "name"),
        employer=text_field(form, "employer"),
        description=text_field(form, "description").replace("\r\n", "\n"),
    )


MANUAL_MAX = 500  # members included or excluded by hand in one rule


def parse_manual(text: str) -> dict[str, str]:
    """Lines of "member number: reason" -> {number: reason}; ``BadRequest`` names the first
    line that is not one."""
    decisions: dict[str, str] = {}
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if not line.strip():
            continue
        member, sep, reason = line.partition(":")
        if not sep or not member.strip() or not reason.strip():
            raise BadRequest(
                N_("Line %(line)s: write the member number, a colon, then the reason."),
                line=number,
            )
        decisions[member.strip()] = reason.strip()[:500]
    if len(decisions) > MANUAL_MAX:
        raise BadRequest(
            N_("At most %(max)s members can be included or excluded by hand."), max=MANUAL_MAX
        )
    return decisions
