"""Staff pages for notices: compose, preview, send, follow progress, print letters."""

from __future__ import annotations

import re

import pypdfium2 as pdfium
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ratify.app import create_app
from ratify.audit.models import AuditEvent
from ratify.authz import Role
from ratify.notices import campaigns
from ratify.notices.models import Campaign, Message, MessageStatus
from tests.conftest import make_client
from tests.factories import make_org, make_user
from tests.helpers import csrf_from, form_from, login
from tests.notices.support import (
    link_of,
    open_vote_with_contacts,
    register_credentials,
    send_everything,
    smtp_sink,
    voter_of,
)

__all__ = ["smtp_sink"]


def _form(client, path: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Every field of the page's first form as a browser would send it untouched."""
    page = client.get(path).text
    fields = dict(
        re.findall(r'<input id="f-[^"]+" name="([^"]+)" type="text" value="([^"]*)"', page)
    )
    for name, value in re.findall(
        r'<textarea id="f-[^"]+" name="([^"]+)"[^>]*>([^<]*)</textarea>', page
    ):
        fields[name] = value.replace("&#39;", "'").replace("&amp;", "&").replace("&#34;", '"')
    for name, value in re.findall(
        r'<input type="radio" name="([^"]+)" value="([^"]+)" checked>', page
    ):
        fields[name] = value
    fields.update(form_from(client, path))
    return fields


def test_staff_compose_preview_and_send_an_announcement(
    db: Session,
    client,
    settings,
    secret_ledger,  # type: ignore[no-untyped-def]
) -> None:
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    register_credentials(secret_ledger, db, settings, vote)
    base = f"/o/{u.org.slug}/votes/{vote.id}/notices"
    login(client, u.staff.email)
    assert "/notices" in client.get(f"/o/{u.org.slug}/votes/{vote.id}").text
    new = client.get(base + "/new?kind=announcement")
    assert new.status_code == 200 and "{link}" in new.text
    assert "segments" in new.text
    fields = _form(client, base + "/new?kind=announcement")
    fields["name"] = "Voting is open"
    fields["letters"] = "on"
    created = client.post(base + "/new", data=fields)
    assert created.status_code == 303, created.text
    campaign = db.scalars(select(Campaign)).one()
    page = client.get(created.headers["location"])
    assert "Who it reaches if sent now" in page.text
    # email: 1001, 1002, 1003, 2001-2003; SMS: 1004 only; letters: 1005, 1006
    assert re.search(r"Email: 6\b", page.text) and re.search(r"Text message: 1\b", page.text)
    assert re.search(r"Letter: 2\b", page.text)

    preview = client.post(
        f"{base}/{campaign.id}/preview",
        data={"member_number": "1001", "csrf_token": csrf_from(client, f"{base}/{campaign.id}")},
    )
    assert preview.status_code == 200
    assert "José Last1001" in preview.text or "Jos&eacute;" in preview.text
    real = link_of(settings, voter_of(db, vote, "1001"))
    assert real not in preview.text
    assert real.rsplit("/", 1)[1] not in preview.text
    assert "xxxx-xxxx" in preview.text

    sent = client.post(
        f"{base}/{campaign.id}/send",
        data={"csrf_token": csrf_from(client, f"{base}/{campaign.id}")},
    )
    assert sent.status_code == 303
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Message)) == 9
    progress = client.get(f"{base}/{campaign.id}").text
    assert "Progress" in progress and "Queued" in progress
    listing = client.get(base).text
    assert "Voting is open" in listing and re.search(r"Queued: 9\b", listing)
    actions = set(db.scalars(select(AuditEvent.action)))
    assert {"notice.campaign_created", "notice.campaign_sent"} <= actions
    # Nothing on the staff pages carries a link.
    for number in ("1001", "1002", "2001"):
        credential = link_of(settings, voter_of(db, vote, number)).rsplit("/", 1)[1]
        for path in (base, f"{base}/{campaign.id}"):
            assert credential not in client.get(path).text


def test_a_bad_placeholder_is_refused_with_the_form_kept_and_nothing_written(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    base = f"/o/{u.org.slug}/votes/{vote.id}/notices"
    login(client, u.staff.email)
    fields = _form(client, base + "/new?kind=reminder")
    fields["text.email.en.body"] = "Hi {name}, vote: {link} {{ config }}"
    refused = client.post(base + "/new", data=fields)
    assert refused.status_code == 400
    assert (
        "Unknown placeholder" in refused.text
        and "{{ config }}" not in refused.text.split("Unknown placeholder")[0]
    )
    assert "Hi {name}, vote: {link}" in refused.text  # what was typed is kept
    assert db.scalars(select(Campaign)).all() == []
    fields["text.email.en.body"] = "Hi {name}, no link here"
    refused = client.post(base + "/new", data=fields)
    assert refused.status_code == 400 and "{link}" in refused.text
    forged = {**fields, "audience": "everyone-ever"}
    assert client.post(base + "/new", data=forged).status_code == 400
    no_csrf = {k: v for k, v in fields.items() if k != "csrf_token"}
    assert client.post(base + "/new", data=no_csrf).status_code == 403
    assert db.scalars(select(Campaign)).all() == []


def test_schedule_and_cancel(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    campaign = campaigns.create(
        db, u.org, vote,
        campaigns.CampaignForm(
            kind=campaigns.MessageKind.ANNOUNCEMENT, name="Later",
            audience=campaigns.Audience.ALL, reach=campaigns.Reach.ALL, tally_group=None,
            both_channels=campaigns.BothChannels.EMAIL, letters=False,
            texts=campaigns.default_texts(campaigns.MessageKind.ANNOUNCEMENT, ["en", "es"]),
        ),
        actor=u.staff,
    )  # fmt: skip
    db.flush()
    path = f"/o/{u.org.slug}/votes/{vote.id}/notices/{campaign.id}"
    login(client, u.staff.email)
    token = csrf_from(client, path)
    past = client.post(
        path + "/schedule", data={"send_at": "2020-01-01T09:00", "csrf_token": token}
    )
    assert past.status_code == 400 and "future" in past.text
    garbage = client.post(path + "/schedule", data={"send_at": "soon", "csrf_token": token})
    assert garbage.status_code == 400
    assert vote.closes_at is not None
    local = vote.closes_at.astimezone(__import__("zoneinfo").ZoneInfo(u.org.timezone))
    at = (local - __import__("datetime").timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    ok = client.post(path + "/schedule", data={"send_at": at, "csrf_token": token})
    assert ok.status_code == 303
    db.expire_all()
    assert db.get_one(Campaign, campaign.id).status.value == "scheduled"
    assert client.post(path + "/cancel", data={"csrf_token": token}).status_code == 303
    db.expire_all()
    assert db.get_one(Campaign, campaign.id).status.value == "cancelled"
    again = client.post(path + "/send", data={"csrf_token": token})
    assert again.status_code == 409
    assert db.scalar(select(func.count()).select_from(Message)) == 0


def test_letters_print_as_a_pdf_for_admins_once_each(db: Session, client, settings) -> None:  # type: ignore[no-untyped-def]
    import zxingcpp

    u, vote = open_vote_with_contacts(db, settings.secret_key)
    for member in u.members:
        member.address_line1 = f"{member.member_number} Main St"
        member.city = "Oakland"
    campaign = campaigns.create(
        db, u.org, vote,
        campaigns.CampaignForm(
            kind=campaigns.MessageKind.ANNOUNCEMENT, name="Letters",
            audience=campaigns.Audience.ALL, reach=campaigns.Reach.LETTER_ONLY,
            tally_group=None, both_channels=campaigns.BothChannels.EMAIL, letters=True,
            texts=campaigns.default_texts(campaigns.MessageKind.ANNOUNCEMENT, ["en", "es"]),
        ),
        actor=u.staff,
    )  # fmt: skip
    campaigns.send_now(db, u.org, vote, campaign, actor=u.staff)
    db.flush()
    path = f"/o/{u.org.slug}/votes/{vote.id}/notices/{campaign.id}"
    login(client, u.staff.email)
    page = client.get(path).text
    assert "2 letters are waiting" in page and "letters.pdf" not in page  # staff: not theirs
    token = csrf_from(client, path)
    assert client.post(path + "/letters.pdf", data={"csrf_token": token}).status_code == 403
    client.cookies.clear()
    login(client, u.admin.email)
    token = csrf_from(client, path)
    pdf = client.post(path + "/letters.pdf", data={"csrf_token": token})
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    document = pdfium.PdfDocument(pdf.content)
    assert len(document) == 2
    decoded = set()
    for page_ in document:
        image = page_.render(scale=3).to_pil()
        decoded.update(r.text for r in zxingcpp.read_barcodes(image))
    assert decoded == {link_of(settings, voter_of(db, vote, n)) for n in ("1005", "1006")}
    db.expire_all()
    statuses = set(db.scalars(select(Message.status)))
    assert statuses == {MessageStatus.SENT}
    assert db.scalar(select(func.count()).where(AuditEvent.action == "notice.letters_printed")) == 1
    again = client.post(path + "/letters.pdf", data={"csrf_token": csrf_from(client, path)})
    assert again.status_code == 400


def test_other_roles_and_other_organizations_cannot_reach_notices(
    db: Session, client, settings
) -> None:  # type: ignore[no-untyped-def]
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    base = f"/o/{u.org.slug}/votes/{vote.id}/notices"
    for role in (Role.COMMITTEE, Role.OBSERVER):
        client.cookies.clear()
        login(client, make_user(db, u.org, role).email)
        assert client.get(base).status_code == 403
        assert client.get(base + "/new?kind=announcement").status_code == 403
    other = make_org(db)
    client.cookies.clear()
    login(client, make_user(db, other, Role.ADMIN).email)
    assert client.get(base.replace(u.org.slug, other.slug)).status_code == 404
    assert client.get(base).status_code in (403, 404)


def test_an_organization_adds_its_own_translation_of_a_notice(
    db: Session,
    sessions,
    settings,
    smtp_sink,
    secret_ledger,  # type: ignore[no-untyped-def]
) -> None:
    from tests.notices.support import mail_settings
    from tests.notices.test_outbox import outbox_for

    settings = mail_settings(settings, smtp_sink)
    u, vote = open_vote_with_contacts(db, settings.secret_key)
    by_number = {m.member_number: m for m in u.members}
    by_number["2001"].preferred_language = "vi"
    db.flush()
    client = make_client(
        create_app(settings, sessions=sessions), secret_ledger, follow_redirects=False
    )
    base = f"/o/{u.org.slug}/votes/{vote.id}/notices"
    login(client, u.staff.email)
    fields = _form(client, base + "/new?kind=announcement")
    fields.update({"add_language": "vi", "reach": "email", "tally_group": "TECH"})
    created = client.post(base + "/new", data=fields)
    assert created.status_code == 303, created.text
    path = created.headers["location"]
    response = client.get(path)
    page = response.text
    assert response.status_code == 200, page[-3000:]
    assert "(vi)" in page and "text.email.vi.body" in page
    fields = _form(client, path)
    fields["text.email.vi.subject"] = "Bỏ phiếu ngay: {vote}"
    fields["text.email.vi.body"] = "Xin chào {name}, hãy bỏ phiếu: {link}"
    fields["text.sms.vi.body"] = "Bỏ phiếu: {link}"
    assert client.post(path, data=fields).status_code == 303
    refused = client.post(path, data={**fields, "add_language": "not-a-language-xx"})
    assert refused.status_code == 400
    assert client.post(path + "/send", data=form_from(client, path)).status_code == 303
    db.expire_all()
    send_everything(outbox_for(sessions, settings, "w"))
    vietnamese = smtp_sink.to("t2001@example.org")[0].message
    assert vietnamese["Subject"] == "Bỏ phiếu ngay: 2027 contract"
    assert vietnamese["Content-Language"] == "vi"
    assert "Xin chào First2001 Last2001" in vietnamese.get_body(("plain",)).get_content()
    english = smtp_sink.to("t2002@example.org")[0].message
    assert english["Content-Language"] == "en" and english["Subject"].startswith("Vote now")
