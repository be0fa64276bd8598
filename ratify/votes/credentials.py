"""Personal links (DESIGN.md §4 rule 4). A voter's credential is 128 bits derived as
HMAC(per-vote key, voter id, issue number), the per-vote key itself derived from the secret key;
it is never stored. The voter row keeps only a keyed hash of it, to find the voter when the link
is opened. Anyone holding the secret key can derive a link again (reminders and letters carry
the same one), so every deliberate display of a link to staff is audited and counted."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid

VOTE_KEY_PURPOSE = b"ratify.vote-credential-key"
LOOKUP_PURPOSE = b"ratify.vote-credential-lookup"
LENGTH = 26  # 128 bits in lower-case base32, no padding: easy to type from a letter
_SHAPE = re.compile(r"[a-z2-7]{26}")


def _derive(secret_key: str, purpose: bytes) -> bytes:
    return hmac.new(secret_key.encode(), purpose, hashlib.sha256).digest()


class Minter:
    """Credentials and their lookup hashes for one vote, with its keys derived once (a
    300,000-voter list is minted in a loop)."""

    def __init__(self, secret_key: str, vote_id: uuid.UUID) -> None:
        self._vote_key = hmac.new(
            _derive(secret_key, VOTE_KEY_PURPOSE), vote_id.bytes, hashlib.sha256
        ).digest()
        self._lookup_key = _derive(secret_key, LOOKUP_PURPOSE)

    def credential(self, voter_id: uuid.UUID, issue: int) -> str:
        mac = hmac.new(
            self._vote_key, voter_id.bytes + issue.to_bytes(4, "big"), hashlib.sha256
        ).digest()
        return base64.b32encode(mac[:16]).decode().rstrip("=").lower()

    def lookup(self, voter_id: uuid.UUID, issue: int) -> str:
        """The keyed hash the voter row keeps for issue ``issue`` of its credential."""
        return lookup_hash(self._lookup_key, self.credential(voter_id, issue))


def lookup_key(secret_key: str) -> bytes:
    return _derive(secret_key, LOOKUP_PURPOSE)


def lookup_hash(key: bytes, credential: str) -> str:
    return hmac.new(key, credential.encode(), hashlib.sha256).hexdigest()


def parse(text: str) -> str | None:
    """A credential as typed or clicked (any case, spaces or dashes from a letter), or None
    when it cannot be one: then there is nothing to look up."""
    cleaned = re.sub(r"[\s-]", "", text).lower()
    return cleaned if _SHAPE.fullmatch(cleaned) else None


def link(base_url: str, credential: str) -> str:
    return f"{base_url.rstrip('/')}/v/{credential}"
