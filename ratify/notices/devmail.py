"""Development mail: a local SMTP catcher (aiosmtpd) that `ratify serve --with-worker` starts
when no mail server is set, keeping each message as a file under ``<var dir>/mail``, and the
development-only pages at ``/dev/mail`` that list them. A new user running ``make run`` sees
the notices a vote sends (with their links, as a member would) without any mail server.

In production the pages do not exist (404) and nothing is started."""

from __future__ import annotations

import email
import email.policy
import itertools
import logging
import os
import re
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from starlette.responses import Response

from ratify.authz import PUBLIC
from ratify.errors import NotFound
from ratify.settings import Settings
from ratify.web.routing import ViewContext, page

LIST_LIMIT = 200
_NAME = re.compile(r"\d{8}T\d{6}-\d+\.eml")


def mail_dir(settings: Settings) -> Path:
    return settings.var_dir / "mail"


class _Keep:
    """aiosmtpd handler: each message as one file, written whole then renamed into place."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.counter = itertools.count(1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        name = f"{stamp}-{os.getpid()}{next(self.counter):06d}.eml"
        partial = self.folder / (name + ".part")
        partial.write_bytes(bytes(envelope.original_content or envelope.content or b""))
        partial.replace(self.folder / name)
        return "250 OK kept as " + name


def start_catcher(settings: Settings) -> tuple[Any, dict[str, str]]:
    """Start the catcher on a free loopback port; (controller, the RATIFY_SMTP_* variables a
    worker needs to send to it)."""
    from aiosmtpd.controller import Controller

    # aiosmtpd logs every connection (and at debug level, what was sent): not wanted.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    folder = mail_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(_Keep(folder), hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    return controller, {
        "RATIFY_SMTP_HOST": "127.0.0.1",
        "RATIFY_SMTP_PORT": str(port),
        "RATIFY_SMTP_SECURITY": "none",
    }


@dataclass(frozen=True)
class Caught:
    name: str
    received: datetime
    to: str
    subject: str


def _read(path: Path) -> EmailMessage:
    with path.open("rb") as fh:
        return email.message_from_binary_file(fh, policy=email.policy.default)


def caught(settings: Settings) -> list[Caught]:
    folder = mail_dir(settings)
    if not folder.is_dir():
        return []
    paths = sorted((p for p in folder.iterdir() if _NAME.fullmatch(p.name)), reverse=True)
    found = []
    for path in paths[:LIST_LIMIT]:
        message = _read(path)
        found.append(
            Caught(
                name=path.name,
                received=datetime.fromtimestamp(path.stat().st_mtime, UTC),
                to=str(message.get("To", "")),
                subject=str(message.get("Subject", "")),
            )
        )
    return found


def _development_only(ctx: ViewContext) -> None:
    if ctx.app.settings.production:
        raise NotFound()


def mail_list(ctx: ViewContext) -> Response:
    _development_only(ctx)
    return ctx.render(
        "notices/devmail.html", messages=caught(ctx.app.settings), message=None, body=""
    )


def mail_message(ctx: ViewContext) -> Response:
    _development_only(ctx)
    name = str(ctx.request.path_params["name"])
    path = mail_dir(ctx.app.settings) / name
    if not _NAME.fullmatch(name) or not path.is_file():
        raise NotFound()
    message = _read(path)
    part = message.get_body(("plain",))
    body = part.get_content() if part is not None else ""
    return ctx.render(
        "notices/devmail.html",
        messages=[],
        message={k: str(message.get(k, "")) for k in ("From", "To", "Subject", "Date")},
        body=body,
        links=re.findall(r"https?://\S+", body),
    )


def wait_for(settings: Settings, count: int, timeout: float = 10.0) -> list[Caught]:
    """For tests and demos: the caught messages once there are ``count`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        found = caught(settings)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


ROUTES = [
    page("/dev/mail", mail_list, access=PUBLIC),
    page("/dev/mail/{name}", mail_message, access=PUBLIC),
]
