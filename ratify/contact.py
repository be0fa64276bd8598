"""Contact details as people type them, checked and normalized with the usual libraries."""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email


def normalize_email(raw: str) -> str | None:
    """The address in normal form, or None when it is not an email address."""
    try:
        checked = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.normalized.lower()


def normalize_phone(raw: str, region: str) -> str | None:
    """E.164 (+15551234567), or None when it is not a possible phone number."""
    try:
        number = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
