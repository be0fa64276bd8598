"""After the close: count, result in words, reconciliation, recount, certification by two
committee members, and the certificate as a page and a PDF (both databases)."""

from __future__ import annotations

import re

import pypdfium2
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ratify.authz import Role
from ratify.votes import casting, paper
from ratify.votes import services as votes
from ratify.votes.models import Ballot, Channel, SecondFactor, Vote, VoteStatus
from tests.factories import PASSWORD, make_user
from tests.helpers import csrf_from, login
from tests.votes.support import Union, make_union
from tests.votes.test_casting import open_vote, voter
from tests.votes.test_published import _close


def _voted_and_closed(db: Session, u: Union, settings) -> Vote:  # type: ignore[no-untyped-def]
    """Four nurses online (3 yes, 1 no), two technicians online (yes, yes), one nurse on
    paper (no, in a confirmed batch); then closed."""
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    for number, choice in (("1001", "yes"), ("1002", "yes"), ("1003", "yes"), ("1004", "no"),
                           ("2001", "yes"), ("2002", "yes")):  # fmt: skip
        casting.cast(db, casting.Seat(voter(db, vote, number).id, 1, vote.id), choice)
    paper.strike_off(db, u.org, vote, actor=u.staff, member_number="1005", channel=Channel.PAPER)
    _close(db, vote)
    vote = votes.get_vote(db, u.org, vote.id)
    batch = paper.enter_batch(db, u.org, vote, actor=u.committee[0], group="RN", label="Box 1",
                              counts={"yes": "0", "no": "1"})  # fmt: skip
    paper.confirm_batch(db, u.org, vote, actor=u.committee[1], batch_id=batch.id)
    db.flush()
    return vote


def _post(client, url: str, page: str, **data: str):  # type: ignore[no-untyped-def]
    return client.post(url, data={"csrf_token": csrf_from(client, page), **data})


def test_a_closed_vote_is_counted_recounted_certified_and_its_certificate_printed(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = _voted_and_closed(db, u, settings)
    result = f"/o/{u.org.slug}/votes/{vote.id}/result"
    login(client, u.committee[0].email)
    before = client.get(result)
    assert before.status_code == 200 and "not counted yet" in before.text
    assert "Ratified" not in before.text
    counted = _post(client, f"{result}/count", result)
    assert counted.status_code == 303
    db.expire_all()
    vote = db.get_one(Vote, vote.id)
    assert vote.status == VoteStatus.TALLIED and vote.box_digest and vote.result
    assert all(db.scalars(select(Ballot.mixed).where(Ballot.vote_id == vote.id)))  # final mix
    page = client.get(result).text
    assert "Ratified." in page
    assert "Yes, I accept the agreement had 5 of 7 votes cast: 4 were needed" in page
    assert "Recount from the ballot box" in page and vote.box_digest in page
    # Reconciliation: RN 4 online = 4 ballots = 4 receipts, 1 struck off = 1 paper ballot.
    assert re.search(
        r"<th scope=\"row\">RN</th><td>4</td><td>4</td><td>4</td><td>1</td><td>1</td><td>yes</td>",
        page,
    )
    # A second count is refused; a recount matches.
    assert _post(client, f"{result}/count", result).status_code == 409
    recount = _post(client, f"{result}/recount", result)
    assert recount.status_code == 200 and "it matches the result" in recount.text

    # Two committee members sign; the vote is certified and read-only.
    wrong = _post(client, f"{result}/sign", result, password="not it")
    assert wrong.status_code == 401 and "not your password" in wrong.text
    assert _post(client, f"{result}/sign", result, password=PASSWORD).status_code == 303
    again = _post(client, f"{result}/sign", result, password=PASSWORD)
    assert again.status_code == 409 and "already signed" in again.text
    client.cookies.clear()
    login(client, u.committee[1].email)
    assert _post(client, f"{result}/sign", result, password=PASSWORD).status_code == 303
    db.expire_all()
    assert db.get_one(Vote, vote.id).status == VoteStatus.CERTIFIED

    certificate = client.get(f"/o/{u.org.slug}/votes/{vote.id}/certificate")
    assert certificate.status_code == 200
    text = certificate.text
    assert u.org.name in text and vote.voter_fingerprint in text and vote.box_digest in text
    assert "Ratified." in text and "Certified by" in text
    assert all(c.name in text for c in u.committee)
    pdf = client.get(f"/o/{u.org.slug}/votes/{vote.id}/certificate.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    document = pypdfium2.PdfDocument(pdf.content)
    extracted = "\n".join(document[i].get_textpage().get_text_range() for i in range(len(document)))
    assert "Certificate of the result" in extracted and "Ratified." in extracted
    assert "5 of 7 votes cast" in extracted and vote.box_digest[:16] in extracted.replace("\n", "")

    # Once certified, observers may read the result too.
    client.cookies.clear()
    login(client, make_user(db, u.org, Role.OBSERVER).email)
    assert client.get(result).status_code == 200


def test_nothing_is_shown_before_the_close_nor_to_observers_before_certification(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    casting.cast(db, casting.Seat(voter(db, vote, "1001").id, 1, vote.id), "yes")
    result = f"/o/{u.org.slug}/votes/{vote.id}/result"
    login(client, u.committee[0].email)
    assert client.get(result).status_code == 409  # rule 3
    assert client.get(f"/o/{u.org.slug}/votes/{vote.id}/certificate").status_code == 409
    _close(db, vote)
    client.cookies.clear()
    login(client, make_user(db, u.org, Role.OBSERVER).email)
    assert client.get(result).status_code == 403
    client.cookies.clear()
    login(client, u.staff.email)
    assert client.get(result).status_code == 200  # staff see results after the tally
    assert _post(client, f"{result}/count", result).status_code == 403  # the committee counts


def test_the_count_waits_for_challenges_and_paper_batches(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    paper.strike_off(db, u.org, vote, actor=u.staff, member_number="1005", channel=Channel.PAPER)
    _close(db, vote)
    vote = votes.get_vote(db, u.org, vote.id)
    paper.enter_batch(db, u.org, vote, actor=u.committee[0], group="RN", label="Box 1",
                      counts={"yes": "1", "no": "0"})  # fmt: skip
    db.flush()
    result = f"/o/{u.org.slug}/votes/{vote.id}/result"
    login(client, u.committee[0].email)
    assert "waiting for a second committee member" in client.get(result).text
    refused = _post(client, f"{result}/count", result)
    assert refused.status_code == 409 and "waiting for a second committee member" in refused.text
    db.expire_all()
    assert db.get_one(Vote, vote.id).status == VoteStatus.CLOSED


def test_a_recount_after_tampering_names_what_differs(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = _voted_and_closed(db, u, settings)
    result = f"/o/{u.org.slug}/votes/{vote.id}/result"
    login(client, u.committee[0].email)
    assert _post(client, f"{result}/count", result).status_code == 303
    one = db.scalars(
        select(Ballot.id).where(Ballot.vote_id == vote.id, Ballot.choice == "yes")
    ).first()
    db.execute(update(Ballot).where(Ballot.id == one).values(choice="no"))
    recount = _post(client, f"{result}/recount", result)
    assert "does not match the result" in recount.text and "box_digest" in recount.text


def _certified(db: Session, u: Union, settings) -> Vote:  # type: ignore[no-untyped-def]
    from ratify.security import password_hasher
    from ratify.votes import certify, results

    vote = _voted_and_closed(db, u, settings)
    results.count(db, u.org, vote, actor=u.committee[0], secret_key=settings.secret_key)
    vote = votes.get_vote(db, u.org, vote.id)
    for member in u.committee:
        certify.sign(db, settings, password_hasher(settings), u.org, vote, user=member,
                     password=PASSWORD, client_address="10.0.0.9")  # fmt: skip
    db.flush()
    return vote


def test_a_certified_result_is_published_to_members_and_the_public_only_if_chosen(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import make_client
    from tests.votes.test_casting import link_of, sign_in

    u = make_union(db)
    vote = _certified(db, u, settings)
    public = f"/results/{u.org.slug}/{vote.id}"
    assert (
        sign_in(client, link_of(settings.secret_key, voter(db, vote, "1001")), "").status_code
        == 303
    )
    assert "/v/result" in client.get("/v/ballot").text
    unpublished = client.get("/v/result")
    assert unpublished.status_code == 409 and "in its own way" in unpublished.text
    assert client.get(public).status_code == 404
    # An administrator chooses to publish results.
    admin = make_user(db, u.org, Role.ADMIN)
    staff_client = make_client(client.app, client.ledger, follow_redirects=False)
    login(staff_client, admin.email)
    settings_page = f"/o/{u.org.slug}/settings"
    saved = staff_client.post(settings_page, data={
        "csrf_token": csrf_from(staff_client, settings_page), "name": u.org.name,
        "default_language": "en", "timezone": u.org.timezone, "dues_grace_months": "2",
        "publish_results": "1",
    })  # fmt: skip
    assert saved.status_code == 303
    member_view = client.get("/v/result")
    assert member_view.status_code == 200 and "Ratified." in member_view.text
    assert "5 of 7 votes cast" in member_view.text
    anyone = make_client(client.app, client.ledger, follow_redirects=False)
    shown = anyone.get(public)
    assert shown.status_code == 200 and "Ratified." in shown.text and u.org.name in shown.text
    assert anyone.get(f"/results/{u.org.slug}/{voter(db, vote, '1001').id}").status_code == 404
    assert anyone.get(f"/results/no-such-org/{vote.id}").status_code == 404
    # A vote counted but not yet certified is not public, even where results are published.
    other = _voted_and_closed(db, u, settings)
    assert anyone.get(f"/results/{u.org.slug}/{other.id}").status_code == 404


def test_the_vote_page_links_to_the_result_once_closed(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    u = make_union(db)
    vote = open_vote(db, u, settings.secret_key, second_factor=SecondFactor.NONE)
    page = f"/o/{u.org.slug}/votes/{vote.id}"
    login(client, u.committee[0].email)
    assert f"{page}/result" not in client.get(page).text  # open: no result, anywhere
    _close(db, vote)
    assert f'href="{page}/result"' in client.get(page).text


def test_a_certified_vote_is_read_only(db: Session, settings) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from ratify.errors import Conflict
    from ratify.votes import certify, results

    u = make_union(db)
    vote = _certified(db, u, settings)
    assert vote.status == VoteStatus.CERTIFIED
    with pytest.raises(Conflict):
        paper.enter_batch(db, u.org, vote, actor=u.committee[0], group="RN", label="Late box",
                          counts={"yes": "1", "no": "0"})  # fmt: skip
    with pytest.raises(Conflict):
        results.count(db, u.org, vote, actor=u.committee[0], secret_key=settings.secret_key)
    with pytest.raises(Conflict):
        certify.explain(db, u.org, vote, actor=u.committee[0], note="after the fact")
    with pytest.raises(Conflict):
        votes.extend(db, u.org, vote, actor=u.admin, closes_at=vote.closes_at, reason="x")
    with pytest.raises(Conflict):
        casting.reissue(db, u.org, vote, voter(db, vote, "1006"), actor=u.staff,
                        secret_key=settings.secret_key)  # fmt: skip


def test_the_vote_page_states_the_blank_and_small_unit_rules(db: Session, client) -> None:  # type: ignore[no-untyped-def]
    from tests.votes.support import ready_vote

    u = make_union(db)
    vote = ready_vote(
        db, u, allow_blank=True,
        threshold=votes.Threshold(blank_counts=True, merge_small_groups=True),
    )  # fmt: skip
    login(client, u.staff.email)
    page = client.get(f"/o/{u.org.slug}/votes/{vote.id}").text
    assert "a blank option, counted in the votes cast" in page
    assert "units of fewer than 5 ballots counted in the total only" in page
