"""Contact details as people type them, checked and normalized with the usual libraries."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from ratify.errors import N_

# RFC 5322 dot-atom in ASCII: the local part of nearly every address on a roster.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def normalize_email(raw: str) -> str | None:
    """The address in normal form, or None when it is not an email address.

    email-validator decides; a roster of 300,000 addresses shares a few hundred domains, so a
    plain ASCII local part is matched against the dot-atom grammar and its domain is checked
    once (cached), which gives the same answer as checking the whole address every time.
    """
    address = raw.strip()
    local, at, domain = address.rpartition("@")
    plain = at and address.isascii() and len(address) <= 254 and len(local) <= 64
    if plain and _DOT_ATOM.fullmatch(local):
        checked = _checked_domain(domain)
        return f"{local}@{checked}".lower() if checked is not None else None
    return _validated(address)


@lru_cache(maxsize=4096)
def _checked_domain(domain: str) -> str | None:
    normalized = _validated(f"x@{domain}")
    return normalized.partition("@")[2] if normalized is not None else None


def _validated(address: str) -> str | None:
    try:
        checked = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.normalized.lower()


# A North American number in its usual shapes: +1 312 555 0100, (312) 555-0100, 312.555.0100,
# 3125550100. Its E.164 form is +1 and the ten digits; phonenumbers gives the same answer
# (tests/test_contact.py checks the two agree), at a tenth of the cost: a 300,000-row roster's
# phones took 9 s of its import's 15 s preview through the library alone.
_NANP = re.compile(r"(\+1[ .-]?)?\(?([2-9]\d{2})\)?[ .-]?([2-9]\d{2})[ .-]?(\d{4})")


@lru_cache(maxsize=64)
def _nanp_region(region: str) -> bool:
    return phonenumbers.country_code_for_region(region) == 1


def normalize_phone(raw: str, region: str) -> str | None:
    """E.164 (+15551234567), or None when it is not a possible phone number."""
    text = raw.strip()
    fast = _NANP.fullmatch(text)
    if fast and (fast[1] or _nanp_region(region)) and fast[0].count("(") == fast[0].count(")"):
        return f"+1{fast[2]}{fast[3]}{fast[4]}"
    return _parsed_phone(text, region)


def _parsed_phone(text: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def checked_contact(email: str, phone: str, region: str, errors: dict[str, str]) -> tuple[str, str]:
    """(email, phone) normalized, each empty when not given; a given one that is not an
    address or a number is named in ``errors`` under "email" or "phone" (messages to
    translate)."""
    found_email = found_phone = ""
    if email.strip():
        found_email = normalize_email(email) or ""
        if not found_email:
            errors["email"] = N_("This is not an email address.")
    if phone.strip():
        found_phone = normalize_phone(phone, region) or ""
        if not found_phone:
            errors["phone"] = N_("This is not a phone number.")
    return found_email, found_phone
