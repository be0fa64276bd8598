"""Setting up a vote through its pages: the draft, the set-up form, the organization's time
zone, refusals with field messages, permissions and other organizations."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ratify.audit.models import AuditEvent
from ratify.authz import Role
from ratify.votes import services as votes
from ratify.votes.models import SecondFactor, Vote, VoteKind, VoteStatus
from tests.factories import make_user
from tests.helpers import csrf_from, login, post_form
from tests.votes.support import fields_for, make_union, ready_vote


def _events(db: Session, action: str) -> list[AuditEvent]:
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _edit_form(u, vote: Vote) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {
        "title": "2027 contract",
        "question_en": "Do you accept the TA?",
        "question_es": "¿Acepta el acuerdo?",
        "option_0_en": "Yes",
        "option_1_en": "No",
        "option_0_es": "Sí",
        "option_1_es": "No",
        "opens": "2027-03-01T09:00",
        "closes": "2027-03-08T17:30",
        "cutoff": "2026-11-15",
        "units": [str(u.rn.id), str(u.tech.id)],
        "membership": ["member"],
        "employment": ["active", "on_leave"],
        "tally_grouping": "per_unit",
        "threshold_fraction": "2/3",
        "quorum_percent": "30",
        "threshold_units": "every_unit",
        "committee": [str(c.id) for c in u.committee],
        "signatures_required": "2",
        "second_factor": "birth_year",
    }


def _post(client, path: str, data: dict[str, object], form_page: str):  # type: ignore[no-untyped-def]
    return client.post(path, data={**data, "csrf_token": csrf_from(client, form_page)})


def test_staff_create_a_ratification_draft_with_yes_and_no(db: Session, client) -> None:
    u = make_union(db)
    login(client, u.staff.email)
    assert "Set up a vote" in client.get(f"/o/{u.org.slug}/votes").text
    response = post_form(
        client,
        f"/o/{u.org.slug}/votes",
        {"title": "2027 contract", "kind": "ratification", "languages": "es"},
        form_page=f"/o/{u.org.slug}/votes/new",
    )
    assert response.status_code == 303
    vote = db.scalars(select(Vote).where(Vote.organization_id == u.org.id)).one()
    assert response.headers["location"] == f"/o/{u.org.slug}/votes/{vote.id}/edit"
    vote = votes.get_vote(db, u.org, vote.id)
    assert vote.status == VoteStatus.DRAFT and vote.languages == ["es"]
    assert [o.key for o in vote.options] == ["yes", "no"]
    assert vote.options[0].labels == {"es": "Sí, acepto el acuerdo"}
    assert _events(db, "vote.created")[0].data["kind"] == "ratification"


def test_a_new_vote_needs_a_title_a_kind_and_a_language(db: Session, client) -> None:
    u = make_union(db)
    login(client, u.staff.email)
    page = f"/o/{u.org.slug}/votes/new"
    response = post_form(
        client, f"/o/{u.org.slug}/votes", {"title": "", "kind": "ratification"}, form_page=page
    )
    assert response.status_code == 400
    assert "Give the vote a title." in response.text
    assert "Choose at least one language for the ballot." in response.text
    response = post_form(
        client,
        f"/o/{u.org.slug}/votes",
        {"title": "x", "kind": "poll", "languages": "en"},
        form_page=page,
    )
    assert response.status_code == 400 and "Choose the kind of vote." in response.text
    assert db.scalar(select(func.count()).select_from(Vote)) == 0


def test_the_set_up_form_keeps_times_in_utc_entered_in_the_organizations_zone(
    db: Session, client
) -> None:
    u = make_union(db)
    vote = votes.create_vote(
        db, u.org, actor=u.staff, kind=VoteKind.RATIFICATION, title="T", languages=["en", "es"]
    )
    login(client, u.staff.email)
    edit = f"/o/{u.org.slug}/votes/{vote.id}/edit"
    response = _post(client, edit, _edit_form(u, vote), edit)
    assert response.status_code == 303, response.text
    db.expire_all()
    vote = votes.get_vote(db, u.org, vote.id)
    # 09:00 in Los Angeles in March (PST, before the change) is 17:00 UTC.
    assert vote.opens_at == datetime(2027, 3, 1, 17, 0, tzinfo=UTC)
    assert vote.closes_at == datetime(2027, 3, 9, 1, 30, tzinfo=UTC)
    assert [o.labels for o in vote.options] == [{"en": "Yes", "es": "Sí"}, {"en": "No", "es": "No"}]
    assert vote.eligibility is not None and vote.eligibility["membership"] == ["member"]
    assert vote.threshold == {"kind": "fraction", "numerator": 2, "denominator": 3,
                              "quorum_percent": 30, "units": "every_unit",
                              "blank_counts": False, "merge_small_groups": False}  # fmt: skip
    assert {c.id for c in votes.committee_of(db, vote)} == {c.id for c in u.committee}
    # Shown again as it was typed, in the organization's zone.
    again = client.get(edit).text
    assert 'value="2027-03-01T09:00"' in again and 'value="2027-03-08T17:30"' in again
    assert "America/Los_Angeles" in client.get(f"/o/{u.org.slug}/votes/{vote.id}").text
    assert _events(db, "vote.updated")[0].data["second_factor"] == "birth_year"


@pytest.mark.parametrize(
    ("change", "field_message"),
    [
        ({"closes": "2027-02-01T09:00"}, "The vote must close after it opens."),
        ({"opens": "2027-03-14T02:30"}, "This time does not exist in the organization"),
        ({"opens": "next tuesday"}, "Enter the date and time as YYYY-MM-DD HH:MM."),
        ({"second_factor": "postal_code", "mail_letters": "1"}, "shows through a letter"),
        ({"units": ["not-a-unit"]}, "Choose at least one bargaining unit of this organization."),
        ({"signatures_required": "3"}, "More signatures are required than there are committee"),
        ({"question_es": ""}, "Write the question."),
        ({"option_1_en": "yes"}, "Two options have the same wording."),
        ({"cutoff": "2026-13-01"}, "Enter the date as YYYY-MM-DD."),
        ({"cutoff": "0001-01-01", "joined_days": "36500"}, "Enter the date as YYYY-MM-DD."),
        ({"closes": "9999-12-31T23:59"}, "Enter the date and time as YYYY-MM-DD HH:MM."),
        ({"opens": "0001-01-01T00:00"}, "Enter the date and time as YYYY-MM-DD HH:MM."),
        ({"quorum_percent": "150"}, "Enter a percentage from 1 to 100"),
    ],
)
def test_bad_set_up_gets_a_field_message_and_changes_nothing(
    db: Session, client, change: dict[str, object], field_message: str
) -> None:
    u = make_union(db)
    vote = votes.create_vote(
        db, u.org, actor=u.staff, kind=VoteKind.RATIFICATION, title="T", languages=["en", "es"]
    )
    login(client, u.staff.email)
    edit = f"/o/{u.org.slug}/votes/{vote.id}/edit"
    response = _post(client, edit, {**_edit_form(u, vote), **change}, edit)
    assert response.status_code == 400
    assert field_message in response.text
    assert 'value="2027 contract"' in response.text  # what was typed is kept
    db.expire_all()
    assert votes.get_vote(db, u.org, vote.id).opens_at is None
    assert _events(db, "vote.updated") == []


def test_only_committee_members_can_certify(db: Session, client) -> None:
    u = make_union(db)
    vote = votes.create_vote(
        db, u.org, actor=u.staff, kind=VoteKind.RATIFICATION, title="T", languages=["en"]
    )
    with pytest.raises(votes.VoteInvalid) as refused:
        fields = fields_for(u, vote, committee_ids=frozenset({u.staff.id}))
        votes.update_vote(db, u.org, vote, actor=u.staff, fields=fields)
    assert "committee" in refused.value.errors


def test_a_question_has_two_to_ten_options_in_every_language(db: Session) -> None:
    u = make_union(db)
    vote = votes.create_vote(
        db, u.org, actor=u.staff, kind=VoteKind.QUESTION, title="Q", languages=["en", "es"]
    )
    for count in (1, 11):
        options = [{"en": f"E{n}", "es": f"S{n}"} for n in range(count)]
        with pytest.raises(votes.VoteInvalid) as refused:
            votes.update_vote(
                db, u.org, vote, actor=u.staff, fields=fields_for(u, vote, options=options)
            )
        assert "options_en" in refused.value.errors
    options = [{"en": f"E{n}", "es": f"S{n}"} for n in range(3)]
    votes.update_vote(db, u.org, vote, actor=u.staff, fields=fields_for(u, vote, options=options))
    vote = votes.get_vote(db, u.org, vote.id)
    assert [(o.key, o.labels["es"]) for o in vote.options] == [
        ("1", "S0"),
        ("2", "S1"),
        ("3", "S2"),
    ]


def test_question_options_are_lines_in_the_same_order_in_each_language(db: Session, client) -> None:
    u = make_union(db)
    vote = votes.create_vote(
        db, u.org, actor=u.staff, kind=VoteKind.QUESTION, title="Q", languages=["en", "es"]
    )
    login(client, u.staff.email)
    edit = f"/o/{u.org.slug}/votes/{vote.id}/edit"
    form = {
        **_edit_form(u, vote),
        "options_en": "Strike\nWait\nSettle",
        "options_es": "Huelga\nEsperar",
    }
    response = _post(client, edit, form, edit)
    assert response.status_code == 400
    assert "Write the same number of options, in the same order, in each language." in response.text
    form["options_es"] = "Huelga\r\nEsperar\r\n\r\nAcordar"
    assert _post(client, edit, form, edit).status_code == 303
    db.expire_all()
    vote = votes.get_vote(db, u.org, vote.id)
    assert [o.labels for o in vote.options][2] == {"en": "Settle", "es": "Acordar"}


def test_another_organizations_vote_does_not_exist(db: Session, client) -> None:
    u = make_union(db)
    other = make_union(db)
    vote = ready_vote(db, other)
    login(client, u.admin.email)
    base = f"/o/{u.org.slug}/votes/{vote.id}"
    for path in ["", "/edit", "/documents", "/preview", "/voters", "/documents/en/agreement.pdf"]:
        assert client.get(base + path).status_code == 404, path
    token = csrf_from(client, f"/o/{u.org.slug}/votes")
    for path in ["/edit", "/schedule", "/unschedule", "/extend", "/voters/exclude",
                 "/voters/challenge", "/second-factor", "/documents/en"]:  # fmt: skip
        assert client.post(base + path, data={"csrf_token": token}).status_code == 404, path
    assert client.get(f"/o/{u.org.slug}/votes/not-a-uuid").status_code == 404
    assert votes.get_vote(db, other.org, vote.id).status == VoteStatus.DRAFT


def test_who_may_read_and_who_may_set_up(db: Session, client) -> None:
    u = make_union(db)
    vote = ready_vote(db, u)
    observer = make_user(db, u.org, Role.OBSERVER)
    login(client, observer.email)
    base = f"/o/{u.org.slug}/votes/{vote.id}"
    assert client.get(f"/o/{u.org.slug}/votes").status_code == 200
    assert client.get(base).status_code == 200
    assert "Edit the set-up" not in client.get(base).text
    assert client.get(base + "/edit").status_code == 403
    assert client.get(base + "/documents").status_code == 403
    token = csrf_from(client, base)
    assert client.post(base + "/schedule", data={"csrf_token": token}).status_code == 403
    assert client.post(base + "/extend", data={"csrf_token": token}).status_code == 403


def test_every_form_needs_its_csrf_token(db: Session, client) -> None:
    u = make_union(db)
    vote = ready_vote(db, u)
    login(client, u.staff.email)
    base = f"/o/{u.org.slug}/votes/{vote.id}"
    client.get(base)
    for path in [f"/o/{u.org.slug}/votes", base + "/edit", base + "/schedule",
                 base + "/documents/en", base + "/voters/exclude"]:  # fmt: skip
        assert client.post(path, data={"title": "x"}).status_code == 403, path
    assert votes.get_vote(db, u.org, vote.id).status == VoteStatus.DRAFT


def test_none_as_second_factor_is_warned_about(db: Session, client) -> None:
    u = make_union(db)
    vote = ready_vote(db, u, second_factor=SecondFactor.NONE)
    login(client, u.staff.email)
    page = client.get(f"/o/{u.org.slug}/votes/{vote.id}").text
    assert "Warning: with no second factor, anyone who sees a member" in page


def test_set_up_is_checked_again_by_the_service(db: Session) -> None:
    """The pages parse; the service decides (the API will call it too)."""
    u = make_union(db)
    vote = votes.create_vote(
        db, u.org, actor=u.staff, kind=VoteKind.RATIFICATION, title="T", languages=["en"]
    )
    fields = fields_for(u, vote)
    with pytest.raises(votes.VoteInvalid) as refused:
        votes.update_vote(db, u.org, vote, actor=u.staff,
                          fields=replace(fields, closes_at=fields.opens_at))  # fmt: skip
    assert refused.value.errors == {"closes": "The vote must close after it opens."}


NASTY = ["", "x" * 5000, "-1", "9" * 40, "\u202e", "<script>", "NaN", "2027-02-30T10:00", "١٢٣"]


def test_no_value_in_any_field_of_the_set_up_breaks_it(db: Session, client) -> None:
    """Whatever arrives in any one field: the page answers with a message, never a 500,
    and a refused set-up changes nothing."""
    u = make_union(db)
    vote = votes.create_vote(
        db, u.org, actor=u.staff, kind=VoteKind.RATIFICATION, title="T", languages=["en", "es"]
    )
    login(client, u.staff.email)
    edit = f"/o/{u.org.slug}/votes/{vote.id}/edit"
    token = csrf_from(client, edit)
    form = _edit_form(u, vote)
    for name in [*form, "joined_days", "mail_letters", "good_standing"]:
        for value in NASTY:
            saved = len(_events(db, "vote.updated"))
            response = client.post(edit, data={**form, name: value, "csrf_token": token})
            assert response.status_code in (303, 400), (name, value, response.status_code)
            if response.status_code == 400:
                assert len(_events(db, "vote.updated")) == saved, (name, value)
