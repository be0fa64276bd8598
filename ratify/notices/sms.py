"""SMS: segment counting, a gateway adapter for Twilio's REST API shape, and the pieces the
opt-out webhook needs (signature check, STOP/START keywords)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol
from urllib.parse import quote, urlencode, urlsplit

import gsm0338  # type: ignore[import-untyped]  # noqa: F401  (registers the "gsm03.38" codec)

if TYPE_CHECKING:
    from ratify.settings import Settings

Encoding = Literal["GSM-7", "UCS-2"]

# Units in one message on its own, and in each part of a concatenated one (the user data
# header that numbers the parts takes 6 octets: 7 septets, or 3 UTF-16 units).
_SINGLE: dict[Encoding, int] = {"GSM-7": 160, "UCS-2": 70}
_PART: dict[Encoding, int] = {"GSM-7": 153, "UCS-2": 67}


@dataclass(frozen=True)
class SmsLength:
    """How a text goes over the air: shown to staff before they send."""

    encoding: Encoding
    units: int  # septets for GSM-7 (extension characters take 2), UTF-16 units for UCS-2
    segments: int
    per_segment: int
    remaining: int  # units still free in the last segment


def _widths(text: str) -> tuple[Encoding, list[int]]:
    try:
        text.encode("gsm03.38")
    except UnicodeEncodeError:
        return "UCS-2", [2 if ord(c) > 0xFFFF else 1 for c in text]
    # The codec passes a bare ESC through, but a handset would read it as the start of an
    # extension pair and swallow the next character.
    if "\x1b" in text:
        return "UCS-2", [1] * len(text)
    return "GSM-7", [len(c.encode("gsm03.38")) for c in text]


def _pack(text: str) -> tuple[Encoding, int, list[tuple[str, int]]]:
    """Parts as the network cuts them, each with the units it holds.

    Characters are never cut in two: an escape pair (GSM-7) or a surrogate pair (UCS-2) that
    would straddle a boundary starts the next part, which is why counting has to pack.
    """
    encoding, widths = _widths(text)
    total = sum(widths)
    if total == 0:
        return encoding, 0, []
    if total <= _SINGLE[encoding]:
        return encoding, total, [(text, total)]
    limit = _PART[encoding]
    parts: list[tuple[str, int]] = []
    start = used = 0
    for i, width in enumerate(widths):
        if used + width > limit:
            parts.append((text[start:i], used))
            start, used = i, 0
        used += width
    parts.append((text[start:], used))
    return encoding, total, parts


def segments(text: str) -> SmsLength:
    encoding, units, parts = _pack(text)
    per_segment = _SINGLE[encoding] if len(parts) <= 1 else _PART[encoding]
    last = parts[-1][1] if parts else 0
    return SmsLength(
        encoding=encoding,
        units=units,
        segments=len(parts),
        per_segment=per_segment,
        remaining=per_segment - last,
    )


def split(text: str) -> list[str]:
    """The parts a handset receives and joins back together."""
    return [part for part, _ in _pack(text)[2]]


class SmsFailed(Exception):
    """A text the gateway did not take.

    ``reason`` is short and safe to log: it never holds the body (bodies carry personal voting
    links, DESIGN.md §4) nor the gateway token.
    """

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class SmsGateway(Protocol):
    def send(self, *, to: str, body: str, idempotency_key: str) -> str:
        """Hand one text to the provider and return its message id, or raise SmsFailed."""
        ...


def _permanent(status: int) -> bool:
    # 408 and 429 ask us to come back later. 401 is a wrong account or token: fixing the
    # settings makes every waiting text sendable, so it must not fail them for good.
    return 400 <= status < 500 and status not in (401, 408, 429)


class TwilioGateway:
    """Twilio's Messages API (or anything with its shape), over one kept-alive connection."""

    def __init__(
        self,
        *,
        base_url: str,
        account: str,
        token: str,
        sender: str,
        timeout: float = 10.0,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError("SMS gateway address must be an http:// or https:// URL")
        self._scheme = url.scheme
        self._host = url.hostname
        self._port = url.port
        self._path = (
            f"{url.path.rstrip('/')}/2010-04-01/Accounts/{quote(account, safe='')}/Messages.json"
        )
        self._sender = sender
        self._timeout = timeout
        # Only the header is kept, so the token is in no attribute a repr or debugger shows.
        credentials = base64.b64encode(f"{account}:{token}".encode()).decode("ascii")
        self._authorization = f"Basic {credentials}"
        self._connection: http.client.HTTPConnection | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioGateway | None:
        if not settings.sms_base_url:
            return None
        return cls(
            base_url=settings.sms_base_url,
            account=settings.sms_account,
            token=settings.sms_token,
            sender=settings.sms_from,
        )

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            if self._scheme == "https":
                self._connection = http.client.HTTPSConnection(
                    self._host,
                    self._port,
                    timeout=self._timeout,
                    context=ssl.create_default_context(),
                )
            else:
                self._connection = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout
                )
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def send(self, *, to: str, body: str, idempotency_key: str) -> str:
        form = urlencode({"To": to, "From": self._sender, "Body": body}).encode()
        headers = {
            "Authorization": self._authorization,
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
            "I-Twilio-Idempotency-Token": idempotency_key,
        }
        try:
            status, payload = self._post(form, headers)
        except TimeoutError:
            self.close()
            raise SmsFailed("gateway timed out", permanent=False) from None
        except (OSError, http.client.HTTPException) as error:
            self.close()
            # The class name only: no exception text, which could quote what was sent.
            reason = f"gateway unreachable ({type(error).__name__})"
            raise SmsFailed(reason, permanent=False) from None
        if not 200 <= status < 300:
            raise SmsFailed(_error_reason(status, payload), permanent=_permanent(status))
        try:
            sid = json.loads(payload).get("sid")
        except (ValueError, AttributeError):
            sid = None
        if not isinstance(sid, str) or not sid:
            raise SmsFailed(f"HTTP {status} without a message id", permanent=False)
        return sid

    def _post(self, form: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        connection = self._connect()
        reused = connection.sock is not None
        try:
            return self._exchange(connection, form, headers)
        except ConnectionError:  # http.client.RemoteDisconnected is one
            if not reused:
                raise
        # The gateway closed the idle connection before this request reached it. Posting
        # again on a new one is safe: the idempotency token stops a second text.
        self.close()
        return self._exchange(self._connect(), form, headers)

    def _exchange(
        self, connection: http.client.HTTPConnection, form: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        connection.request("POST", self._path, body=form, headers=headers)
        response = connection.getresponse()
        # Read it all, or the connection cannot carry the next request.
        return response.status, response.read()


def _error_reason(status: int, payload: bytes) -> str:
    # Twilio's numeric error code says what went wrong (21211: not a valid number); its
    # message text is left out because it may quote the request.
    try:
        code = json.loads(payload).get("code")
    except (ValueError, AttributeError):
        code = None
    if isinstance(code, int) and not isinstance(code, bool):
        return f"HTTP {status}, gateway error {code}"
    return f"HTTP {status}"


def signature(token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's X-Twilio-Signature: HMAC-SHA1 with the auth token over the full URL followed
    by each POST parameter's name and value, in name order, base64-encoded."""
    data = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_ok(token: str, url: str, params: Mapping[str, str], given: str) -> bool:
    # Constant time, so a forger learns nothing from how fast a guess is refused. Bytes, since
    # compare_digest refuses non-ASCII str and the header is whatever the sender put there.
    return hmac.compare_digest(signature(token, url, params).encode(), given.encode())


# Carrier-standard keywords (CTIA), and the Spanish ones Spanish-speaking members send.
_STOP = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "alto", "parar"})
_START = frozenset({"start", "unstop", "yes"})


def reply_intent(body: str) -> Literal["stop", "start", None]:
    """What a reply asks for. Only a message that is nothing but the keyword counts, as carriers
    do: "stop sending me the old link" is a person talking, not an opt-out."""
    # A full stop or exclamation mark is still the keyword: when in doubt, honour the opt-out.
    word = body.strip().rstrip(".!").strip().casefold()
    if word in _STOP:
        return "stop"
    if word in _START:
        return "start"
    return None
