"""Second factors: what a voter types beside their personal link, normalized the same way at
freeze and at casting, kept only as a keyed hash (DESIGN.md §4 rule 4)."""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
import uuid
from collections.abc import Callable
from datetime import date

from ratify.errors import N_
from ratify.security import keyed_digest
from ratify.votes.models import SecondFactor

FACTOR_LABELS = {
    SecondFactor.MEMBER_LAST4: N_("Last 4 characters of the member number"),
    SecondFactor.BIRTH_YEAR: N_("Year of birth"),
    SecondFactor.POSTAL_CODE: N_("Postal code"),
    SecondFactor.PHONE_LAST4: N_("Last 4 digits of the phone number"),
    SecondFactor.NONE: N_("None (the link alone)"),
}
PURPOSE = "voter-second-factor"


def normalize(factor: SecondFactor, value: str) -> str:
    """What is compared: letters and digits only, upper-cased; a US ZIP+4 as its first 5."""
    # Full-width digits from a phone's keyboard (１９８４) or other scripts' (١٩٨٤) are the
    # digits 1984: NFKC, then each digit by its value.
    cleaned = "".join(
        _ascii_digit(ch) for ch in unicodedata.normalize("NFKC", value) if ch.isalnum()
    ).upper()
    if factor == SecondFactor.MEMBER_LAST4:
        return cleaned[-4:] if len(cleaned) >= 4 else ""
    if factor == SecondFactor.PHONE_LAST4:
        digits = "".join(ch for ch in cleaned if ch.isdigit())
        return digits[-4:] if len(digits) >= 4 else ""
    if factor == SecondFactor.POSTAL_CODE and len(cleaned) == 9 and cleaned.isdigit():
        return cleaned[:5]
    if factor == SecondFactor.BIRTH_YEAR:
        return cleaned if len(cleaned) == 4 and cleaned.isdigit() else ""
    return cleaned


def _ascii_digit(ch: str) -> str:
    digit = unicodedata.digit(ch, None)
    return str(digit) if digit is not None else ch


def member_value(
    factor: SecondFactor,
    member_number: str,
    birth_date: date | None,
    postal_code: str,
    phone: str = "",
) -> str:
    """The member's own answer, normalized; empty when the roster lacks it."""
    if factor == SecondFactor.PHONE_LAST4:
        return normalize(factor, phone)
    if factor == SecondFactor.MEMBER_LAST4:
        return normalize(factor, member_number)
    if factor == SecondFactor.BIRTH_YEAR:
        return str(birth_date.year) if birth_date else ""
    if factor == SecondFactor.POSTAL_CODE:
        return normalize(factor, postal_code)
    return ""


def check_value(secret_key: str, voter_id: uuid.UUID, normalized: str) -> str:
    """A keyed hash of one voter's answer. The voter's id is in it, so two voters born the
    same year do not share a value."""
    return keyed_digest(secret_key, PURPOSE, f"{voter_id}:{normalized}")


def checker(secret_key: str) -> Callable[[uuid.UUID, str], str]:
    """``check_value`` with its key derived once, for a whole list (300,000 voters)."""
    key = hmac.new(secret_key.encode(), PURPOSE.encode(), hashlib.sha256).digest()

    def check(voter_id: uuid.UUID, normalized: str) -> str:
        return hmac.new(key, f"{voter_id}:{normalized}".encode(), hashlib.sha256).hexdigest()

    return check


def matches(
    secret_key: str, voter_id: uuid.UUID, stored: str, typed: str, factor: SecondFactor
) -> bool:
    """Constant-time comparison of what a voter typed with what was frozen."""
    return hmac.compare_digest(stored, check_value(secret_key, voter_id, normalize(factor, typed)))
