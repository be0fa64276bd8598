"""Votes through the API: list, one vote with its voter list in counts, turnout; another
organization's vote is 404; nothing counts choices while the vote is open. Drafts made and
set up through the API pass the set-up page's checks, and a refused body writes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, get_args
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ratify.api.schemas import Language
from ratify.audit.models import AuditEvent
from ratify.authz import Role
from ratify.settings import LANGUAGES
from ratify.votes import casting
from ratify.votes import services as votes
from ratify.votes.models import SecondFactor, Vote, VoteKind
from tests.api.support import bearer, make_token
from tests.factories import make_org
from tests.votes.support import CUTOFF, PDF, Union, make_union
from tests.votes.test_casting import open_vote, voter


def test_votes_voter_list_and_turnout_in_counts_never_choices(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    for number in ("1001", "2001"):
        access = casting.find_by_session(db, voter(db, vote, number).id, 1)
        assert access is not None
        casting.cast(db, access.seat, "yes")
    db.flush()
    headers = bearer(make_token(db, u.org, Role.OBSERVER, client))
    api = f"/api/v1/orgs/{u.org.slug}/votes"
    listed = client.get(api, headers=headers).json()
    assert [(v["id"], v["status"]) for v in listed["items"]] == [(str(vote.id), "open")]
    detail = client.get(f"{api}/{vote.id}", headers=headers).json()
    assert detail["voter_list"] == {
        "fingerprint": vote.voter_fingerprint,
        "eligible": 9,
        "excluded": 1,
        "challenged": 0,
        "missing_second_factor": 0,
        "groups": {"RN": 6, "TECH": 3},
        "small_groups": ["TECH"],
    }
    turnout = client.get(f"{api}/{vote.id}/turnout", headers=headers).json()
    assert (turnout["eligible"], turnout["voted"]) == (9, 2)
    assert [(g["group"], g["voted"], g["online"]) for g in turnout["groups"]] == [
        ("RN", 1, 1),
        ("TECH", 1, 1),
    ]
    assert sum(h["voted"] for h in turnout["hourly"]) == 2
    # The ballot's options are shown as worded, never with a count.
    assert [sorted(o) for o in detail["options"]] == [["key", "labels"]] * 2
    rest = {k: v for k, v in detail.items() if k != "options"}
    for answer in (listed, rest, turnout):
        assert "yes" not in str(answer).lower()  # no count of choices, nor any choice
    # Another organization's token finds nothing of this vote.
    other = bearer(make_token(db, make_org(db), Role.STAFF, client))
    other_api = api.replace(u.org.slug, "nope")
    assert client.get(f"{api}/{vote.id}", headers=other).status_code == 404
    assert client.get(other_api, headers=headers).status_code == 404
    assert client.get(f"{api}/{vote.id}/turnout").status_code == 401


# -- making and setting up drafts ----------------------------------------------------------------


def _set_up(u: Union) -> dict[str, Any]:
    """A whole set-up, as JSON: opens tomorrow for a week, times given in the union's zone."""
    zone = ZoneInfo(u.org.timezone)
    opens = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=1)
    return {
        "question": {"en": "Do you accept?", "es": "¿Acepta?"},
        "opens_at": opens.astimezone(zone).isoformat(),
        "closes_at": (opens + timedelta(days=7)).astimezone(zone).isoformat(),
        "eligibility": {
            "cutoff": CUTOFF.isoformat(),
            "units": ["RN", "TECH"],
            "membership": ["member"],
            "good_standing": False,
            "employment": ["active", "on_leave"],
        },
        "tally_grouping": "per_unit",
        "threshold": {"numerator": 2, "denominator": 3, "quorum_percent": 40},
        "second_factor": "birth_year",
        "mail_letters": False,
        "committee": [c.email.upper() for c in u.committee],
        "signatures_required": 2,
    }


def _count_votes(db: Session, u: Union) -> int:
    return db.scalar(select(func.count()).where(Vote.organization_id == u.org.id)) or 0


def _events(db: Session, u: Union, action: str) -> list[AuditEvent]:
    db.expire_all()
    stmt = select(AuditEvent).where(
        AuditEvent.organization_id == u.org.id, AuditEvent.action == action
    )
    return list(db.scalars(stmt))


def test_a_vote_made_and_set_up_through_the_api_is_scheduled_and_its_voter_list_read(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    headers = bearer(make_token(db, u.org, Role.STAFF, client))
    api = f"/api/v1/orgs/{u.org.slug}/votes"
    made = client.post(
        api,
        headers=headers,
        json={"kind": "ratification", "title": " 2027 contract ", "languages": ["es", "en"]},
    )
    assert made.status_code == 201, made.text
    draft = made.json()
    assert made.headers["location"] == f"{api}/{draft['id']}"
    assert (draft["title"], draft["status"], draft["languages"]) == (
        "2027 contract",
        "draft",
        ["en", "es"],
    )
    assert [o["key"] for o in draft["options"]] == ["yes", "no"]
    assert draft["eligibility"] is None and draft["voter_list"] is None

    # The set-up page's first save is a whole set-up; so is the API's.
    url = made.headers["location"]
    partial = client.patch(url, headers=headers, json={"title": "Renamed"})
    assert partial.status_code == 422
    named = {e["field"] for e in partial.json()["errors"]}
    assert {"opens_at", "closes_at", "eligibility.cutoff", "eligibility.units"} <= named

    saved = client.patch(url, headers=headers, json=_set_up(u))
    assert saved.status_code == 200, saved.text
    vote = saved.json()
    assert vote["eligibility"] == {
        "cutoff": CUTOFF.isoformat(),
        "units": ["RN", "TECH"],
        "membership": ["member"],
        "good_standing": False,
        "employment": ["active", "on_leave"],
        "joined_days_before": None,
    }
    assert vote["threshold"] == {
        "numerator": 2,
        "denominator": 3,
        "quorum_percent": 40,
        "units": "aggregate",
        "blank_counts": False,
        "merge_small_groups": False,
    }
    assert datetime.fromisoformat(vote["opens_at"]) == datetime.fromisoformat(
        _set_up(u)["opens_at"]
    )
    assert datetime.fromisoformat(vote["opens_at"]).utcoffset() == timedelta(0)
    assert sorted(c["email"] for c in vote["committee"]) == sorted(c.email for c in u.committee)
    assert (vote["tally_grouping"], vote["second_factor"]) == ("per_unit", "birth_year")

    # Afterwards, a field left out keeps its saved value.
    renamed = client.patch(
        url,
        headers=headers,
        json={"title": "2027–2030 contract", "options": [
            {"labels": {"en": "Yes", "es": "Sí"}}, {"labels": {"en": "No", "es": "No"}},
        ]},
    )  # fmt: skip
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["title"] == "2027–2030 contract"
    assert [o["labels"]["en"] for o in renamed.json()["options"]] == ["Yes", "No"]
    assert renamed.json()["eligibility"] == vote["eligibility"]
    assert renamed.json()["question"] == {"en": "Do you accept?", "es": "¿Acepta?"}

    # Who did it is in the audit log: the token, by its label.
    for action in ("vote.created", "vote.updated"):
        events = _events(db, u, action)
        assert events and all(e.actor_id is None for e in events)
        assert all(e.actor_label.startswith("api:rat_") for e in events)
    assert len(_events(db, u, "vote.updated")) == 2  # the refused save recorded nothing

    # Scheduled by staff on the existing path, its frozen voter list reads through the API.
    db.expire_all()
    draft_vote = votes.get_vote(db, u.org, uuid.UUID(draft["id"]))
    for lang in ("en", "es"):
        votes.save_document(
            db, u.org, draft_vote, actor=u.staff, language=lang, summary="## Wages", pdf=PDF,
            pdf_name="ta.pdf",
        )  # fmt: skip
    votes.schedule(db, u.org, draft_vote, actor=u.staff, secret_key=settings.secret_key)
    db.flush()
    read = client.get(url, headers=bearer(make_token(db, u.org, Role.OBSERVER, client))).json()
    assert read["status"] == "scheduled"
    assert read["voter_list"] == {
        "fingerprint": draft_vote.voter_fingerprint,
        "eligible": 9,
        "excluded": 1,
        "challenged": 0,
        "missing_second_factor": 1,
        "groups": {"RN": 6, "TECH": 3},
        "small_groups": ["TECH"],
    }
    assert [c["email"] for c in read["committee"]] == [None, None]  # an observer's token

    # A scheduled vote's set-up is fixed, through the API as on its pages.
    refused = client.patch(url, headers=headers, json={"title": "Changed"})
    assert refused.status_code == 409
    assert "scheduled" in refused.json()["message"]
    db.expire_all()
    assert votes.get_vote(db, u.org, draft_vote.id).title == "2027–2030 contract"


def test_a_question_is_made_with_its_options_and_set_up_in_one_call(db: Session, client) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    headers = bearer(make_token(db, u.org, Role.STAFF, client))
    options = [{"labels": {"en": f"Option {n}"}} for n in (1, 2, 3)]
    only_options = client.post(
        f"/api/v1/orgs/{u.org.slug}/votes",
        headers=headers,
        json={"kind": "question", "title": "Strike?", "languages": ["en"], "options": options},
    )
    assert only_options.status_code == 201, only_options.text
    assert [(o["key"], o["labels"]) for o in only_options.json()["options"]] == [
        ("1", {"en": "Option 1"}),
        ("2", {"en": "Option 2"}),
        ("3", {"en": "Option 3"}),
    ]
    body = {**_set_up(u), "question": {"en": "Which?"}}
    made = client.post(
        f"/api/v1/orgs/{u.org.slug}/votes",
        headers=headers,
        json={"kind": "question", "title": "Q", "languages": ["en"], "options": options, **body},
    )
    assert made.status_code == 201, made.text
    vote = votes.get_vote(db, u.org, uuid.UUID(made.json()["id"]))
    assert votes.missing_for_scheduling(db, vote) == []
    assert (vote.question, len(vote.options)) == ({"en": "Which?"}, 3)


@pytest.mark.parametrize(
    ("change", "field", "index"),
    [
        ({"eligibility": {"cutoff": "2026-11-15", "units": ["RN", "NOPE"]}},
         "eligibility.units", 1),
        ({"committee": ["nobody@example.org"]}, "committee", 0),
        ({"closes_at": "2020-01-01T00:00:00+00:00"}, "closes_at", None),
        ({"opens_at": "2027-01-01T09:00:00"}, "opens_at", None),  # no offset: which zone?
        ({"opens_at": "9999-12-31T23:59:00-12:00"}, "opens_at", None),
        ({"threshold": {"numerator": 2, "denominator": 5}}, "threshold", None),
        ({"threshold": {"quorum_percent": 150}}, "threshold.quorum_percent", None),
        ({"eligibility": {"cutoff": "0001-01-01", "units": ["RN"]}}, "eligibility.cutoff", None),
        ({"eligibility": {"cutoff": "2026-11-15", "units": ["RN"], "joined_days_before": -1}},
         "eligibility.joined_days_before", None),
        ({"eligibility": {"cutoff": "2026-11-15", "units": ["RN"], "membership": []}},
         "eligibility.membership", None),
        ({"second_factor": "postal_code", "mail_letters": True}, "second_factor", None),
        ({"signatures_required": 3}, "signatures_required", None),
        ({"question": {"en": "Q?", "es": "¿P?", "fr": "Q?"}}, "question.fr", None),
        ({"languages": ["en"], "options": [{"labels": {"en": "Y", "es": "S"}},
                                          {"labels": {"en": "N"}}]}, "options.labels.es", 0),
        ({"question": {"en": "Q?"}}, "question.es", None),
        ({"options": [{"labels": {"en": "Yes", "es": "Sí"}}]}, "options", None),
        ({"options": [{"labels": {"en": "Yes", "es": "Sí"}}, {"labels": {"en": "No"}}]},
         "options.labels.es", 1),
        ({"title": ""}, "title", None),
        ({"title": "x" * 201}, "title", None),
        ({"languages": []}, "languages", None),
        ({"tally_grouping": "by_worksite"}, "tally_grouping", None),
        ({"shoe_size": 11}, "shoe_size", None),
    ],
)  # fmt: skip
def test_a_body_with_one_bad_field_writes_no_vote(
    db: Session, client, change: dict[str, Any], field: str, index: int | None
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    headers = bearer(make_token(db, u.org, Role.STAFF, client))
    body = {"kind": "ratification", "title": "T", "languages": ["en", "es"], **_set_up(u)}
    response = client.post(f"/api/v1/orgs/{u.org.slug}/votes", headers=headers, json=body | change)
    assert response.status_code == 422, response.text
    assert (index, field) in {(e["index"], e["field"]) for e in response.json()["errors"]}
    assert _count_votes(db, u) == 0
    assert _events(db, u, "vote.created") == []


NASTY: list[Any] = [None, "", "x" * 5000, -1, 10**40, 1.5, True, [], {}, ["\u202e"], "NaN"]


def test_no_value_in_any_field_is_a_500_or_a_partial_write(db: Session, client) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    headers = bearer(make_token(db, u.org, Role.STAFF, client))
    body = {"kind": "question", "title": "T", "languages": ["en", "es"], **_set_up(u),
            "options": [{"labels": {"en": f"E{n}", "es": f"S{n}"}} for n in (1, 2)]}  # fmt: skip
    made = 0
    for name in [*body, *body["eligibility"], *body["threshold"], "joined_days_before"]:
        for value in NASTY:
            if name in body:
                sent = {**body, name: value}
            else:
                part = "threshold" if name in body["threshold"] else "eligibility"
                sent = {**body, part: {**body[part], name: value}}
            response = client.post(f"/api/v1/orgs/{u.org.slug}/votes", headers=headers, json=sent)
            assert response.status_code in (201, 422), (name, value, response.text)
            made += response.status_code == 201
            assert _count_votes(db, u) == made, (name, value)


def test_a_change_with_one_bad_field_changes_nothing(db: Session, client) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    headers = bearer(make_token(db, u.org, Role.STAFF, client))
    made = client.post(
        f"/api/v1/orgs/{u.org.slug}/votes",
        headers=headers,
        json={"kind": "ratification", "title": "T", "languages": ["en"], **_set_up(u),
              "question": {"en": "Q?"}},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    url = made.headers["location"]
    bad = {"title": "New", "eligibility": {"cutoff": "2026-11-15", "units": ["X"]}}
    response = client.patch(url, headers=headers, json=bad)
    assert response.status_code == 422
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [
        (0, "eligibility.units")
    ]
    after = client.get(url, headers=headers).json()
    assert after["title"] == "T" and after["eligibility"]["units"] == ["RN", "TECH"]
    assert len(_events(db, u, "vote.updated")) == 1


def test_who_may_make_and_change_votes(db: Session, client) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    draft = votes.create_vote(
        db, u.org, actor=u.staff, kind=VoteKind.RATIFICATION, title="T", languages=["en"]
    )
    api = f"/api/v1/orgs/{u.org.slug}/votes"
    body = {"kind": "ratification", "title": "T", "languages": ["en"]}
    for role in (Role.COMMITTEE, Role.OBSERVER):
        headers = bearer(make_token(db, u.org, role, client))
        assert client.post(api, headers=headers, json=body).status_code == 403
        assert client.patch(f"{api}/{draft.id}", headers=headers, json={}).status_code == 403
    assert client.post(api, json=body).status_code == 401
    # Another organization's token: this organization, and its vote, do not exist for it.
    other = make_org(db)
    theirs = bearer(make_token(db, other, Role.STAFF, client))
    assert client.post(api, headers=theirs, json=body).status_code == 404
    own_api = f"/api/v1/orgs/{other.slug}/votes"
    assert client.patch(f"{own_api}/{draft.id}", headers=theirs, json={}).status_code == 404
    assert client.patch(f"{own_api}/not-a-uuid", headers=theirs, json={}).status_code == 404
    assert _count_votes(db, u) == 1


def test_ballot_languages_of_the_api_are_the_apps() -> None:
    assert get_args(Language) == LANGUAGES


# -- after the count: result, certificate and election record ------------------------------------


def test_result_certificate_and_record_once_counted_and_for_whom(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    from ratify.security import password_hasher
    from ratify.votes import certify, results, verify
    from tests.factories import PASSWORD
    from tests.votes.test_results import _voted_and_closed

    u = make_union(db)
    committee = bearer(make_token(db, u.org, Role.COMMITTEE, client))
    staff = bearer(make_token(db, u.org, Role.STAFF, client))
    observer = bearer(make_token(db, u.org, Role.OBSERVER, client))
    api = f"/api/v1/orgs/{u.org.slug}/votes"

    still_open = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    for what in ("result", "certificate", "record"):
        refused = client.get(f"{api}/{still_open.id}/{what}", headers=committee)
        assert refused.status_code == 409, what  # rule 3, for everyone
        assert refused.json()["message"] == "Nothing is counted before the vote closes."

    vote = _voted_and_closed(db, u, settings)
    closed = client.get(f"{api}/{vote.id}/result", headers=committee)
    assert closed.status_code == 409 and "not been counted yet" in closed.json()["message"]
    assert client.get(f"{api}/{vote.id}/result", headers=observer).status_code == 403

    results.count(db, u.org, vote, actor=u.committee[0], secret_key=settings.secret_key)
    db.flush()
    answer = client.get(f"{api}/{vote.id}/result", headers=staff)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "tallied" and body["certified_at"] is None
    assert body["words"][0] == "Ratified."
    assert body["result"]["outcome"] == "ratified"
    totals = {c["option"]: c["total"] for c in body["result"]["aggregate"]["counts"]}
    assert totals == {"yes": 5, "no": 2}
    assert body["reconciliation"]["matches"] is True
    rn = next(g for g in body["reconciliation"]["groups"] if g["group"] == "RN")
    assert (rn["online_ballots"], rn["receipts"], rn["paper_ballots"]) == (4, 4, 1)
    not_yet = client.get(f"{api}/{vote.id}/certificate", headers=committee)
    assert not_yet.status_code == 409 and "certified the vote" in not_yet.json()["message"]
    for what in ("result", "certificate", "record"):  # observers: once certified
        assert client.get(f"{api}/{vote.id}/{what}", headers=observer).status_code == 403, what

    downloaded = client.get(f"{api}/{vote.id}/record", headers=committee)
    assert downloaded.status_code == 200
    report = verify.verify(downloaded.content)
    assert report.ok, report.text()
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "vote.record_downloaded")
    ).one()
    assert event.actor_id is None and event.actor_label.startswith("api:")
    assert event.data == {"via": "api"}

    for member in u.committee:
        certify.sign(
            db, settings, password_hasher(settings), u.org, votes.get_vote(db, u.org, vote.id),
            user=member, password=PASSWORD, client_address="10.0.0.1",
        )  # fmt: skip
    db.flush()
    certified = db.scalars(select(AuditEvent).where(AuditEvent.action == "vote.certified")).one()
    certificate = client.get(f"{api}/{vote.id}/certificate", headers=observer)
    assert certificate.status_code == 200, certificate.text
    facts = certificate.json()
    assert facts["organization"] == u.org.name and facts["status"] == "certified"
    assert facts["audit_event"] == {"seq": certified.seq, "hash": certified.hash}
    assert facts["box_digest"] == db.get_one(Vote, vote.id).box_digest
    assert facts["eligibility"]["units"] == ["RN", "TECH"]
    assert sorted(s["name"] for s in facts["signers"]) == sorted(c.name for c in u.committee)
    assert client.get(f"{api}/{vote.id}/result", headers=observer).status_code == 200
    record = client.get(f"{api}/{vote.id}/record", headers=observer)
    assert record.status_code == 200 and verify.verify(record.content).ok

    # Another organization's token, another vote's id, and no token.
    other = bearer(make_token(db, make_org(db), Role.COMMITTEE, client))
    assert client.get(f"{api}/{vote.id}/result", headers=other).status_code == 404
    assert client.get(f"{api}/{uuid.uuid4()}/certificate", headers=committee).status_code == 404
    assert client.get(f"{api}/{vote.id}/record").status_code == 401
