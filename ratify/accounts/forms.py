"""Parsing staff forms into checked values, with a message per field."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.datastructures import FormData

from ratify.accounts.services import check_email, normalize_email
from ratify.authz import Role
from ratify.errors import N_
from ratify.web.forms import text_field

ROLE_REQUIRED = N_("Choose a role.")


def parse_role(value: str) -> Role | None:
    try:
        return Role(value)
    except ValueError:
        return None


@dataclass
class StaffForm:
    values: dict[str, str]
    role: Role | None
    errors: dict[str, str] = field(default_factory=dict)


def parse_staff_form(form: FormData | None) -> StaffForm:
    values = {
        "email": normalize_email(text_field(form, "email")),
        "name": text_field(form, "name"),
        "role": text_field(form, "role"),
    }
    parsed = StaffForm(values=values, role=parse_role(values["role"]))
    if problem := check_email(values["email"]):
        parsed.errors["email"] = problem
    if not values["name"]:
        parsed.errors["name"] = N_("Enter the person's name.")
    elif len(values["name"]) > 200:
        parsed.errors["name"] = N_("Use at most 200 characters.")
    if parsed.role is None:
        parsed.errors["role"] = ROLE_REQUIRED
    return parsed
