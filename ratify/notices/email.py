"""Email over SMTP: one message built with the standard library's ``email`` package (encoded
headers for any name, a stable ``Message-ID``), sent over one connection a worker keeps open.

The SMTP conversation is driven step by step (MAIL, RCPT, DATA) rather than through
``sendmail`` so the server's answer to DATA, which names its queue id, can be kept as proof of
sending, and so a refused recipient (a bounce) is told apart from a server in trouble.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import smtplib
import ssl
from dataclasses import dataclass
from email.header import Header
from email.headerregistry import Address
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTPUTF8, compat32
from email.utils import formataddr, formatdate, parseaddr

from ratify.settings import Settings

WIRE = compat32.clone(linesep="\r\n")
_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")
# An address that can go into MAIL FROM / RCPT TO as it is: no spaces, brackets, quotes or
# line breaks (nothing that could end the command or start another).
_PLAIN_ADDRESS = re.compile(r"[^\s<>\"()\[\]\\,;:@]+@[^\s<>\"()\[\]\\,;:@]+")


class MailFailed(Exception):
    """A send that did not happen. ``bounced``: the server refused this address for good;
    ``permanent``: sending it again would fail the same way. ``reason`` is the server's
    answer or the network error, never the message."""

    def __init__(self, reason: str, *, permanent: bool = False, bounced: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason[:500]
        self.permanent = permanent or bounced
        self.bounced = bounced


@dataclass(frozen=True)
class Email:
    to_name: str
    to_address: str
    from_name: str  # shown as the sender's name, at RATIFY_MAIL_FROM's address
    subject: str
    text: str
    html: str
    language: str
    message_id: str  # the same on every attempt, so a receiving system can spot a repeat


def message_id(secret_key: str, domain: str, outbox_id: int) -> str:
    """A stable, unguessable ``Message-ID`` for an outbox row."""
    tag = hmac.new(secret_key.encode(), f"message-id:{outbox_id}".encode(), hashlib.sha256)
    return f"<notice.{outbox_id}.{tag.hexdigest()[:16]}@{domain}>"


def sender_address(settings: Settings) -> tuple[str, str]:
    """(name, address) of RATIFY_MAIL_FROM."""
    name, address = parseaddr(settings.mail_from)
    return name, address or "ratify@localhost"


def one_line(text: str) -> str:
    """A header value on one line: a line break in a subject or a name (a vote title, a
    roster's cell) must not start a header of its own."""
    return _BREAKS.sub(" ", text).strip()


def _address(name: str, address: str) -> str:
    """``Name <address>``, the name RFC 2047-encoded when it is not plain ASCII; a non-ASCII
    address (sent with SMTPUTF8) as raw UTF-8, name and all (RFC 6532)."""
    if not address.isascii():
        local, _, domain = address.rpartition("@")
        return str(Address(display_name=name, username=local, domain=domain))
    return formataddr((name, address), charset="utf-8")


def _header(text: str) -> str:
    return text if text.isascii() else Header(text, "utf-8").encode()


@functools.lru_cache(maxsize=256)
def _subject(text: str) -> str:
    """A subject as a header (most messages of a campaign share theirs), folded with CRLF."""
    return "\r\n".join(_header(text).splitlines())


def build(email: Email, settings: Settings) -> Message:
    """The message as MIME (plain text and HTML, UTF-8 in base64). Built with the email
    package's older, leaner classes (compat32): the newer EmailMessage API parses every
    header it is given again, three times the CPU of sending (bench/notices.py)."""
    _, from_address = sender_address(settings)
    message = MIMEMultipart("alternative")
    message["From"] = _address(one_line(email.from_name), from_address)
    message["To"] = _address(one_line(email.to_name), email.to_address)
    message["Subject"] = _header(one_line(email.subject))
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = email.message_id
    message["Content-Language"] = email.language
    # Out-of-office replies are not wanted (RFC 3834).
    message["Auto-Submitted"] = "auto-generated"
    message.attach(MIMEText(email.text, "plain", "utf-8"))
    message.attach(MIMEText(email.html, "html", "utf-8"))
    return message


class SmtpMailer:
    """Sends over one SMTP connection, opened when first needed and again after it drops."""

    def __init__(self, settings: Settings, *, timeout: float = 30.0) -> None:
        self.settings = settings
        self.timeout = timeout
        self._smtp: smtplib.SMTP | None = None
        self._boundary = f"=_ratify_{secrets.token_hex(12)}"

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if s.smtp_security == "tls":
            smtp = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=self.timeout)
        try:
            smtp.ehlo()
            if s.smtp_security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if s.smtp_username:
                smtp.login(s.smtp_username, s.smtp_password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, email: Email) -> str:
        """Send one message; the server's queue id (or its whole answer to DATA)."""
        _, from_address = sender_address(self.settings)
        international = not (email.to_address.isascii() and from_address.isascii())
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            smtp = self._smtp
            smtp.ehlo_or_helo_if_needed()
            data = None if international else self._plain(email, smtp.has_extn("8bitmime"))
            eight_bit = data is not None and not data.isascii()
            if data is None:
                # compat32 writes the headers as built (encoded already); the newer policies
                # would parse each again. A non-ASCII address needs SMTPUTF8's raw UTF-8.
                message = build(email, self.settings)
                data = message.as_bytes(policy=SMTPUTF8 if international else WIRE)
                eight_bit = international
            return self._converse(
                smtp, from_address, email.to_address, data, international, eight_bit
            )
        except MailFailed:
            self._reset()
            raise
        except smtplib.SMTPAuthenticationError as exc:
            self.close()
            raise MailFailed(f"the mail server refused the login: {exc.smtp_code}") from None
        except (smtplib.SMTPException, OSError) as exc:
            self.close()  # a dropped or confused connection: a fresh one next time
            raise MailFailed(f"mail server unreachable or unwell: {type(exc).__name__}") from None

    def _plain(self, email: Email, eight_bit_ok: bool) -> bytes | None:
        """The message written directly (the common case, at a fraction of the email
        package's cost): ASCII headers, encoded where needed by the email package's own
        helpers, and both parts as UTF-8 text sent 8-bit (RFC 6152). None when that does not
        fit (the server lacks 8BITMIME for a non-ASCII text, a line too long for SMTP, the
        boundary found in the text): then ``build`` writes it."""
        bodies = (email.text, email.html)
        if not eight_bit_ok and not all(body.isascii() for body in bodies):
            return None
        boundary = self._boundary
        for body in bodies:
            if boundary in body or any(len(line) > 900 for line in body.splitlines()):
                return None
        _, from_address = sender_address(self.settings)
        head = "\r\n".join(
            (
                f"From: {_address(one_line(email.from_name), from_address)}",
                f"To: {_address(one_line(email.to_name), email.to_address)}",
                f"Subject: {_subject(one_line(email.subject))}",
                f"Date: {formatdate(usegmt=True)}",
                f"Message-ID: {email.message_id}",
                f"Content-Language: {email.language}",
                "Auto-Submitted: auto-generated",
                "MIME-Version: 1.0",
                f'Content-Type: multipart/alternative; boundary="{boundary}"',
            )
        )
        parts = "".join(
            f"--{boundary}\r\n"
            f'Content-Type: text/{kind}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: {'7bit' if body.isascii() else '8bit'}\r\n\r\n"
            + "\r\n".join(body.splitlines())
            + "\r\n"
            for kind, body in (("plain", email.text), ("html", email.html))
        )
        return f"{head}\r\n\r\n{parts}--{boundary}--\r\n".encode()

    @staticmethod
    def _converse(
        smtp: smtplib.SMTP,
        sender: str,
        recipient: str,
        data: bytes,
        international: bool,
        eight_bit: bool,
    ) -> str:
        if international and not smtp.has_extn("smtputf8"):
            raise MailFailed("the mail server cannot take a non-ASCII address", permanent=True)
        options = ["SMTPUTF8"] if international else []
        if eight_bit:
            options.append("BODY=8BITMIME")
        plain = _PLAIN_ADDRESS.fullmatch(sender) and _PLAIN_ADDRESS.fullmatch(recipient)
        if plain and not international:
            # smtplib's mail() and rcpt() parse each address again (email.utils.parseaddr,
            # the costliest step left per message); these are checked plain addresses.
            extra = "".join(f" {option}" for option in options)
            smtp.putcmd("mail", f"FROM:<{sender}>{extra}")
            code, answer = smtp.getreply()
            _check(code, answer, "MAIL")
            smtp.putcmd("rcpt", f"TO:<{recipient}>")
            code, answer = smtp.getreply()
        else:
            code, answer = smtp.mail(sender, options)
            _check(code, answer, "MAIL")
            code, answer = smtp.rcpt(recipient)
        if code >= 500:
            raise MailFailed(f"RCPT refused: {code} {_text(answer)}", bounced=True)
        _check(code, answer, "RCPT")
        code, answer = smtp.data(data)
        _check(code, answer, "DATA")
        return _text(answer)[:200] or str(code)

    def _reset(self) -> None:
        """After a refused message the connection may be mid-transaction: RSET it."""
        if self._smtp is None:
            return
        try:
            self._smtp.rset()
        except (smtplib.SMTPException, OSError):
            self.close()

    def close(self) -> None:
        if self._smtp is None:
            return
        smtp, self._smtp = self._smtp, None
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def _text(answer: bytes) -> str:
    return answer.decode("utf-8", "replace").replace("\n", " ").strip()


def _check(code: int, answer: bytes, step: str) -> None:
    if 200 <= code < 400:
        return
    raise MailFailed(f"{step} refused: {code} {_text(answer)}", permanent=code >= 500)
