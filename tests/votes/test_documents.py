"""The agreement's documents (a real PDF, a sanitized summary) and the ballot preview."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ratify.audit.models import AuditEvent
from ratify.votes import documents
from ratify.votes import services as votes
from ratify.votes.models import VoteDocument, VoteKind
from tests.helpers import csrf_from, login
from tests.votes.support import PDF, make_union, ready_vote


def _upload(
    client, path: str, form_page: str, *, summary: str, pdf: bytes | None, name: str = "ta.pdf"
):  # type: ignore[no-untyped-def]
    files = {"full_text": (name, pdf, "application/pdf")} if pdf is not None else None
    return client.post(
        path, data={"summary": summary, "csrf_token": csrf_from(client, form_page)}, files=files
    )


def test_the_full_text_and_summary_are_saved_and_the_pdf_served_safely(db: Session, client) -> None:
    u = make_union(db)
    vote = votes.create_vote(
        db, u.org, actor=u.staff, kind=VoteKind.RATIFICATION, title="T", languages=["en", "es"]
    )
    login(client, u.staff.email)
    page = f"/o/{u.org.slug}/votes/{vote.id}/documents"
    response = _upload(client, page + "/es", page, summary="## Salarios\n\n- 4 % al año", pdf=PDF)
    assert response.status_code == 303
    assert response.headers["location"] == page + "?saved=es"
    document = db.scalars(select(VoteDocument).where(VoteDocument.vote_id == vote.id)).one()
    assert document.language == "es" and document.full_text_size == len(PDF)
    assert "<h3>Salarios</h3>" in document.summary_html  # the ballot page owns h1 and h2
    pdf = client.get(page + "/es/agreement.pdf")
    assert pdf.status_code == 200 and pdf.content == PDF
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == 'attachment; filename="agreement-es.pdf"'
    assert pdf.headers["x-content-type-options"] == "nosniff"
    assert client.get(page + "/en/agreement.pdf").status_code == 404  # none uploaded
    assert client.get(page + "/fr/agreement.pdf").status_code == 404  # not a ballot language
    # A new summary keeps the PDF unless another file is sent.
    assert _upload(client, page + "/es", page, summary="Nuevo", pdf=None).status_code == 303
    db.expire_all()
    assert client.get(page + "/es/agreement.pdf").content == PDF
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "vote.document_saved")).first()
    assert event is not None and len(event.data["full_text_sha256"]) == 64


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        (b"<html><script>alert(1)</script></html>", 400, "This file is not a PDF."),
        (b"%PDF-1.4 but truncated", 400, "This file is not a PDF."),
        (b"", 400, "The file is empty."),
    ],
)
def test_a_file_that_is_not_a_pdf_is_refused_and_nothing_is_kept(
    db: Session, client, content: bytes, status: int, message: str
) -> None:
    u = make_union(db)
    vote = votes.create_vote(
        db, u.org, actor=u.staff, kind=VoteKind.RATIFICATION, title="T", languages=["en"]
    )
    login(client, u.staff.email)
    page = f"/o/{u.org.slug}/votes/{vote.id}/documents"
    response = _upload(
        client, page + "/en", page, summary="Kept on the page", pdf=content, name="ta.pdf"
    )
    assert response.status_code == status
    assert message in response.text
    assert "Kept on the page" in response.text  # what was typed is shown again
    assert db.scalars(select(VoteDocument)).all() == []
    assert (
        db.scalars(select(AuditEvent).where(AuditEvent.action == "vote.document_saved")).all() == []
    )


def test_a_pdf_over_the_limit_is_refused(db: Session, client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(documents, "MAX_PDF_BYTES", len(PDF) - 1)
    u = make_union(db)
    vote = votes.create_vote(
        db, u.org, actor=u.staff, kind=VoteKind.RATIFICATION, title="T", languages=["en"]
    )
    login(client, u.staff.email)
    page = f"/o/{u.org.slug}/votes/{vote.id}/documents"
    response = _upload(client, page + "/en", page, summary="", pdf=PDF)
    assert response.status_code == 413
    assert "The PDF is too large" in response.text
    assert db.scalars(select(VoteDocument)).all() == []


def test_the_summary_is_rendered_and_sanitized() -> None:
    html = documents.render_summary(
        "# Title\n\n**Raise** <script>alert(1)</script> <img src=x onerror=alert(1)>\n\n"
        "[ok](https://union.example) [bad](javascript:alert(1)) ![pic](https://x.example/a.png)"
    )
    assert "<h3>Title</h3>" in html and "<strong>Raise</strong>" in html
    # Raw HTML stays text; no element, no handler, no script link, no foreign image.
    assert "<script" not in html and "<img" not in html and "&lt;script&gt;" in html
    assert 'href="https://union.example"' in html and 'rel="noopener noreferrer nofollow"' in html
    assert 'href="javascript' not in html and "x.example" not in html


def test_a_summary_too_long_is_refused(db: Session) -> None:
    u = make_union(db)
    vote = votes.create_vote(
        db, u.org, actor=u.staff, kind=VoteKind.RATIFICATION, title="T", languages=["en"]
    )
    with pytest.raises(votes.BadRequest):
        votes.save_document(db, u.org, vote, actor=u.staff, language="en",
                            summary="x" * (documents.MAX_SUMMARY_CHARS + 1), pdf=None)  # fmt: skip


def test_the_ballot_preview_shows_each_language_as_members_see_it(db: Session, client) -> None:
    u = make_union(db)
    vote = ready_vote(db, u)
    login(client, u.staff.email)
    preview = f"/o/{u.org.slug}/votes/{vote.id}/preview"
    page = client.get(preview + "?lang=es")
    assert page.status_code == 200
    assert '<html lang="es">' in page.text
    assert "Question in es?" in page.text
    assert "Sí, acepto el acuerdo" in page.text and "No, rechazo el acuerdo" in page.text
    assert "<h3>Wages</h3>" in page.text and "4% a year (es)" in page.text
    assert f"/o/{u.org.slug}/votes/{vote.id}/documents/es/agreement.pdf" in page.text
    assert 'name="choice" value="01"' in page.text  # each option's position, not its key
    assert "Revisar mi voto" in page.text  # the button, in Spanish
    assert "Sign out" not in page.text and "Cerrar sesión" not in page.text  # no staff chrome
    english = client.get(preview + "?lang=en").text
    assert "Question in en?" in english and "Review my vote" in english
    review = client.get(preview + "?lang=en&choice=02")
    assert "You are voting: No, I reject the agreement" in review.text
    assert "disabled" in review.text  # nothing is submitted from a preview
    assert "Question in en?" in client.get(preview + "?lang=en&choice=maybe").text
    assert client.get(preview + "?lang=fr").status_code == 404


def test_the_preview_of_a_question_lists_its_options_in_order(db: Session, client) -> None:
    u = make_union(db)
    vote = ready_vote(db, u, kind=VoteKind.QUESTION, languages=("en",))
    login(client, u.staff.email)
    text = client.get(f"/o/{u.org.slug}/votes/{vote.id}/preview").text
    assert text.index("Option 1") < text.index("Option 2") < text.index("Option 3")
    assert 'value="03"' in text  # the third option's mark
