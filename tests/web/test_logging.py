"""The access log names routes by their template: no token, query string or cookie."""

from __future__ import annotations

import json
import logging

from sqlalchemy.orm import Session

from ratify.accounts import services as accounts
from tests.factories import make_org, make_user


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _access_lines(client, path: str) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    capture = Capture()
    ours = next(h for h in logging.getLogger().handlers if getattr(h, "_ratify", False))
    capture.setFormatter(ours.formatter)
    logger = logging.getLogger("ratify.access")
    logger.addHandler(capture)
    try:
        client.get(path)
    finally:
        logger.removeHandler(capture)
    return [json.loads(capture.format(r)) for r in capture.records]


def test_access_log_shows_the_route_template_not_the_token(db: Session, client) -> None:
    org = make_org(db)
    user = make_user(db, org, password=None)
    token = accounts.issue_link_for_staff(db, org, actor=None, user=user, max_age=600)
    lines = _access_lines(client, f"/set-password/{token}?secret=query-value")
    assert len(lines) == 1
    line = lines[0]
    assert line["route"] == "/set-password/{token}"
    assert line["status"] == 200 and line["method"] == "GET" and line["request_id"]
    text = json.dumps(lines)
    assert token not in text and "query-value" not in text


def test_unmatched_paths_are_not_echoed(client) -> None:
    lines = _access_lines(client, "/set-passwrd/abcdefghijklmnopqrstuvwxyz0123456789")
    assert lines[0]["route"] == "(no route)" and lines[0]["status"] == 404
    assert "abcdefghijklmnop" not in json.dumps(lines)


def test_request_id_is_returned_to_the_client(client) -> None:
    first, second = client.get("/healthz"), client.get("/healthz")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
