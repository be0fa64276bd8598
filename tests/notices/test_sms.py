"""SMS: segment packing, the Twilio-shaped gateway over real HTTP, webhook signatures, STOP."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from ratify.notices.sms import (
    SmsFailed,
    SmsGateway,
    TwilioGateway,
    reply_intent,
    segments,
    signature,
    signature_ok,
    split,
)
from ratify.settings import Settings

ACCOUNT = "AC0123456789abcdef0123456789abcdef"
TOKEN = "token-that-must-not-leak-7f3a9c"
SENDER = "+15005550006"
# Bodies carry personal voting links: they must never show up in an error.
BODY = "Your ballot: https://vote.example.org/b/Q2hvb3NlV2lzZWx5-secret"


# Segments


def test_160_gsm_characters_fit_one_segment_and_161_need_two() -> None:
    one = segments("a" * 160)
    assert (one.encoding, one.units, one.segments, one.per_segment, one.remaining) == (
        "GSM-7",
        160,
        1,
        160,
        0,
    )
    two = segments("a" * 161)
    assert (two.units, two.segments, two.per_segment, two.remaining) == (161, 2, 153, 145)


def test_306_gsm_characters_fill_two_parts_and_307_need_three() -> None:
    assert segments("a" * 306).segments == 2
    assert segments("a" * 306).remaining == 0
    assert segments("a" * 307).segments == 3
    assert segments("a" * 307).remaining == 152


def test_extension_characters_count_two_septets() -> None:
    length = segments("€[]{}^~\\|")
    assert (length.encoding, length.units) == ("GSM-7", 18)
    assert segments("€" * 80).segments == 1
    assert segments("€" * 80 + "a").segments == 2


def test_escape_pair_at_the_part_boundary_moves_to_the_next_part() -> None:
    # 152 septets, then "€" (ESC + e) would straddle septets 153 and 154.
    text = "a" * 152 + "€" + "a" * 152
    assert segments(text).units == 306  # two parts' worth, yet it takes three
    assert segments(text).segments == 3
    parts = split(text)
    assert parts == ["a" * 152, "€" + "a" * 151, "a"]
    assert "".join(parts) == text


def test_70_ucs2_characters_fit_one_segment_and_71_need_two() -> None:
    one = segments("ж" * 70)
    assert (one.encoding, one.units, one.segments, one.per_segment, one.remaining) == (
        "UCS-2",
        70,
        1,
        70,
        0,
    )
    two = segments("ж" * 71)
    assert (two.segments, two.per_segment, two.remaining) == (2, 67, 63)


def test_an_emoji_is_two_utf16_units_and_its_pair_is_not_split() -> None:
    assert segments("😀").units == 2
    assert segments("😀" * 35).segments == 1
    text = "ж" * 66 + "😀" + "ж" * 66
    assert segments(text).units == 134  # two parts' worth, yet it takes three
    assert segments(text).segments == 3
    parts = split(text)
    assert parts == ["ж" * 66, "😀" + "ж" * 65, "ж"]
    assert all(len(part.encode("utf-16-le")) // 2 <= 67 for part in parts)


def test_spanish_with_n_tilde_and_e_acute_stays_gsm7() -> None:
    assert segments("El señor Pérez vota mañana").encoding == "GSM-7"
    assert segments("¿Dónde?").encoding == "UCS-2"  # ó is not in GSM-7; ¿ is


def test_one_a_acute_turns_the_whole_text_ucs2() -> None:
    # á is not in the GSM-7 basic set (à is), so 120 characters need two segments.
    text = "a" * 119 + "á"
    assert segments(text).encoding == "UCS-2"
    assert (segments(text).units, segments(text).segments) == (120, 2)
    assert segments("a" * 119 + "à").segments == 1


def test_a_bare_escape_character_is_not_sent_as_gsm7() -> None:
    assert segments("a\x1bb").encoding == "UCS-2"


def test_empty_text_is_no_segments() -> None:
    length = segments("")
    assert (length.units, length.segments, length.remaining) == (0, 0, 160)
    assert split("") == []


def test_a_single_segment_text_is_its_own_only_part() -> None:
    assert split("Vote by Friday") == ["Vote by Friday"]


# Gateway


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    form: dict[str, list[str]]


@dataclass
class FakeTwilio:
    url: str
    requests: list[Seen] = field(default_factory=list)
    connections: int = 0
    replies: list[tuple[int, bytes]] = field(default_factory=list)
    drop_idle_connections: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Server(ThreadingHTTPServer):
    # Join the handler threads on close, so no socket outlives the test.
    daemon_threads = False
    block_on_close = True
    fake: FakeTwilio


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    timeout = 5
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.fake.lock:
            self.server.fake.connections += 1

    def do_POST(self) -> None:
        fake = self.server.fake
        raw = self.rfile.read(int(self.headers["Content-Length"])).decode()
        with fake.lock:
            fake.requests.append(Seen(self.path, dict(self.headers), parse_qs(raw)))
            reply = fake.replies.pop(0) if fake.replies else None
        status, payload = reply or (201, json.dumps({"sid": f"SM{len(fake.requests)}"}).encode())
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        if fake.drop_idle_connections:
            # Hang up without saying so, as a gateway does with an idle connection.
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = fake = FakeTwilio(f"http://127.0.0.1:{server.server_port}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def gateway(fake_twilio: FakeTwilio) -> Iterator[TwilioGateway]:
    gateway = TwilioGateway(
        base_url=fake_twilio.url, account=ACCOUNT, token=TOKEN, sender=SENDER, timeout=2
    )
    yield gateway
    gateway.close()


def _failure(gateway: SmsGateway) -> SmsFailed:
    with pytest.raises(SmsFailed) as caught:
        gateway.send(to="+15551230000", body=BODY, idempotency_key="notice-1")
    return caught.value


def _assert_leaks_nothing(error: SmsFailed) -> None:
    for text in (error.reason, str(error), repr(error)):
        assert BODY not in text
        assert "vote.example.org" not in text
        assert TOKEN not in text


def test_a_sent_text_returns_the_gateway_message_id(
    fake_twilio: FakeTwilio, gateway: TwilioGateway
) -> None:
    sid = gateway.send(to="+15551230000", body=BODY, idempotency_key="notice-1")

    assert sid == "SM1"
    [seen] = fake_twilio.requests
    assert seen.path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert seen.headers["Authorization"] == (
        "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    )
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert seen.headers["I-Twilio-Idempotency-Token"] == "notice-1"
    assert seen.form == {"To": ["+15551230000"], "From": [SENDER], "Body": [BODY]}


def test_two_texts_share_one_kept_alive_connection(
    fake_twilio: FakeTwilio, gateway: TwilioGateway
) -> None:
    gateway.send(to="+15551230000", body="one", idempotency_key="a")
    gateway.send(to="+15551230001", body="two", idempotency_key="b")

    assert len(fake_twilio.requests) == 2
    assert fake_twilio.connections == 1


def test_a_connection_the_gateway_dropped_is_replaced(
    fake_twilio: FakeTwilio, gateway: TwilioGateway
) -> None:
    fake_twilio.drop_idle_connections = True

    assert gateway.send(to="+15551230000", body="one", idempotency_key="a") == "SM1"
    assert gateway.send(to="+15551230001", body="two", idempotency_key="b") == "SM2"

    assert fake_twilio.connections == 2
    assert [seen.headers["I-Twilio-Idempotency-Token"] for seen in fake_twilio.requests] == [
        "a",
        "b",
    ]


def test_a_refused_number_fails_for_good_without_quoting_the_body(
    fake_twilio: FakeTwilio, gateway: TwilioGateway
) -> None:
    # A provider may echo the request in its message; only the code is kept.
    echo = {"code": 21211, "message": f"Invalid 'To' for {BODY} ({TOKEN})", "status": 400}
    fake_twilio.replies.append((400, json.dumps(echo).encode()))

    error = _failure(gateway)

    assert error.permanent
    assert error.reason == "HTTP 400, gateway error 21211"
    _assert_leaks_nothing(error)


@pytest.mark.parametrize("status", [500, 503, 429, 408, 401])
def test_server_errors_and_throttling_are_transient(
    fake_twilio: FakeTwilio, gateway: TwilioGateway, status: int
) -> None:
    fake_twilio.replies.append((status, json.dumps({"message": BODY}).encode()))

    error = _failure(gateway)

    assert not error.permanent
    assert error.reason == f"HTTP {status}"
    _assert_leaks_nothing(error)


def test_the_connection_stays_usable_after_an_error_reply(
    fake_twilio: FakeTwilio, gateway: TwilioGateway
) -> None:
    fake_twilio.replies.append((500, b"{}"))
    _failure(gateway)

    assert gateway.send(to="+15551230000", body="again", idempotency_key="a") == "SM2"
    assert fake_twilio.connections == 1


@pytest.mark.parametrize("payload", [b"<html>oops</html>", b"{}", b'{"sid": ""}', b"[1]"])
def test_a_reply_without_a_message_id_is_transient(
    fake_twilio: FakeTwilio, gateway: TwilioGateway, payload: bytes
) -> None:
    fake_twilio.replies.append((201, payload))

    error = _failure(gateway)

    assert not error.permanent
    assert error.reason == "HTTP 201 without a message id"


def test_a_refused_connection_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = TwilioGateway(
        base_url=f"http://127.0.0.1:{port}", account=ACCOUNT, token=TOKEN, sender=SENDER
    )
    try:
        error = _failure(gateway)
    finally:
        gateway.close()

    assert not error.permanent
    assert error.reason == "gateway unreachable (ConnectionRefusedError)"
    _assert_leaks_nothing(error)


def test_a_gateway_that_never_answers_times_out_as_transient() -> None:
    # Listening but never accepting: the kernel completes the handshake, nobody replies.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        gateway = TwilioGateway(
            base_url=f"http://127.0.0.1:{port}",
            account=ACCOUNT,
            token=TOKEN,
            sender=SENDER,
            timeout=0.2,
        )
        try:
            error = _failure(gateway)
        finally:
            gateway.close()

    assert not error.permanent
    assert error.reason == "gateway timed out"
    _assert_leaks_nothing(error)


def test_the_gateway_repr_does_not_show_the_token(gateway: TwilioGateway) -> None:
    assert TOKEN not in repr(vars(gateway))


def test_gateway_from_settings(fake_twilio: FakeTwilio) -> None:
    assert TwilioGateway.from_settings(Settings()) is None

    settings = Settings(
        sms_base_url=fake_twilio.url + "/", sms_account=ACCOUNT, sms_token=TOKEN, sms_from=SENDER
    )
    gateway = TwilioGateway.from_settings(settings)
    assert gateway is not None
    try:
        assert gateway.send(to="+15551230000", body="hi", idempotency_key="a") == "SM1"
    finally:
        gateway.close()
    assert fake_twilio.requests[0].path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert fake_twilio.requests[0].form["From"] == [SENDER]


def test_a_gateway_address_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="http"):
        TwilioGateway(base_url="ftp://example.org", account="a", token="t", sender="s")


# Webhook signatures. Vectors Twilio published, not computed by this code: the example in
# twilio-php's validation guide (also in twilio-python's tests), and the inbound SMS in
# twilio-ruby's spec/util/request_validator_spec.rb.

DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
DOC_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="

SMS_TOKEN = "2bd9e9638872de601313dc77410d3b23"
SMS_URL = "http://twiliotests.heroku.com/validate/sms"
SMS_PARAMS = {
    "ToState": "CA",
    "FromState": "CA",
    "AccountSid": "ACba8bc05eacf94afdae398e642c9cc32d",
    "SmsMessageSid": "SM2003cbd5e6a3701999aa3e5f20ff2787",
    "Body": "Orly",
    "From": "+14159354345",
    "FromCity": "SAN FRANCISCO",
    "SmsStatus": "received",
    "FromZip": "94107",
    "FromCountry": "US",
    "To": "+14158141819",
    "ToCity": "SAN FRANCISCO",
    "ToZip": "94105",
    "ToCountry": "US",
    "ApiVersion": "2010-04-01",
    "SmsSid": "SM2003cbd5e6a3701999aa3e5f20ff2787",
}
SMS_SIGNATURE = "mxeiv65lEe0b8L6LdVw2jgJi8yw="


def test_signature_matches_twilios_published_vectors() -> None:
    assert signature("12345", DOC_URL, DOC_PARAMS) == DOC_SIGNATURE
    assert signature(SMS_TOKEN, SMS_URL, SMS_PARAMS) == SMS_SIGNATURE
    assert signature_ok("12345", DOC_URL, DOC_PARAMS, DOC_SIGNATURE)
    assert signature_ok(SMS_TOKEN, SMS_URL, SMS_PARAMS, SMS_SIGNATURE)


def test_a_tampered_reply_is_refused() -> None:
    tampered = {**SMS_PARAMS, "Body": "STOP"}
    assert not signature_ok(SMS_TOKEN, SMS_URL, tampered, SMS_SIGNATURE)
    added = {**SMS_PARAMS, "OptOutType": "STOP"}
    assert not signature_ok(SMS_TOKEN, SMS_URL, added, SMS_SIGNATURE)


def test_a_signature_made_with_another_token_is_refused() -> None:
    assert not signature_ok("another-token", SMS_URL, SMS_PARAMS, SMS_SIGNATURE)


def test_a_signature_for_another_url_is_refused() -> None:
    other = "https://twiliotests.heroku.com/validate/sms"
    assert not signature_ok(SMS_TOKEN, other, SMS_PARAMS, SMS_SIGNATURE)


@pytest.mark.parametrize("given", ["", "not base64", "ünïcödé", SMS_SIGNATURE.lower()])
def test_a_malformed_signature_is_refused_without_an_error(given: str) -> None:
    assert not signature_ok(SMS_TOKEN, SMS_URL, SMS_PARAMS, given)


# Replies


@pytest.mark.parametrize(
    "body",
    [
        " Stop \n",
        "STOP",
        "STOPALL",
        "Unsubscribe",
        "CANCEL",
        "end",
        "QUIT",
        "Stop.",
        "ALTO",
        "parar",
    ],
)
def test_opt_out_keywords_are_stop(body: str) -> None:
    assert reply_intent(body) == "stop"


@pytest.mark.parametrize("body", ["START", "start", "Unstop", " yes ", "YES!"])
def test_opt_in_keywords_are_start(body: str) -> None:
    assert reply_intent(body) == "start"


@pytest.mark.parametrize(
    "body",
    ["", "HELP", "stop sending me the old link", "Please stop", "STOP STOP", "yes please", "STO"],
)
def test_anything_else_is_no_intent(body: str) -> None:
    assert reply_intent(body) is None
