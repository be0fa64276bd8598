"""Printed letters: a page per member in the member's language, the recipient alone in the
envelope window, a QR code that scans back to the exact link, and no second-factor value."""

from __future__ import annotations

import re
from dataclasses import fields, replace
from datetime import UTC, datetime

import pypdfium2
import pytest
import zxingcpp
from starlette.routing import Match

from ratify.notices.letters import LAYOUTS, Letter, Paper, Rect, letters_pdf, printed_link
from ratify.votes import credentials
from ratify.votes.models import SecondFactor
from ratify.votes.voting import ROUTES
from ratify.web.templating import Templates

CREDENTIALS = (
    "k7dq2mzx4hb3rnwa5tyc6pje2f",
    "a2b3c4d5e6f7g2h3i4j5k6l7mn",
    "zzzz2222yyyy3333xxxx4444ww",
)
DPI = 150


@pytest.fixture(scope="module")
def templates() -> Templates:
    return Templates()


def make_letter(number: int = 0, **changes: object) -> Letter:
    letter = Letter(
        language="en",
        name=f"Dolores Huerta {number}",
        address_lines=(f"{100 + number} Delano Avenue", "Fresno, CA 93701"),
        organization="United Farm Workers Local 2",
        vote_title="Ratification of the 2026 tentative agreement",
        opens_at=datetime(2026, 3, 2, 16, 0, tzinfo=UTC),
        closes_at=datetime(2026, 3, 10, 3, 0, tzinfo=UTC),
        timezone="America/Los_Angeles",
        link=f"https://vote.example.org/v/{CREDENTIALS[number % len(CREDENTIALS)]}",
        factor=SecondFactor.MEMBER_LAST4,
    )
    return replace(letter, **changes)  # type: ignore[arg-type]


def text_of(page: pypdfium2.PdfPage) -> str:
    return " ".join(page.get_textpage().get_text_range().split())


def text_in(page: pypdfium2.PdfPage, rect: Rect) -> str:
    """The text inside a rectangle given from the page's top-left corner (PDF's origin is
    its bottom-left)."""
    height = page.get_height()
    found = page.get_textpage().get_text_bounded(
        left=rect.left, bottom=height - rect.bottom, right=rect.right, top=height - rect.top
    )
    return " ".join(found.split())


def qr_codes_on(page: pypdfium2.PdfPage) -> list[str]:
    image = page.render(scale=DPI / 72).to_pil()
    return [code.text for code in zxingcpp.read_barcodes(image)]


@pytest.fixture(scope="module")
def batch(templates: Templates) -> pypdfium2.PdfDocument:
    letters = [make_letter(0), make_letter(1, language="es"), make_letter(2)]
    return pypdfium2.PdfDocument(letters_pdf(templates, letters))


def test_a_letters_qr_code_decodes_to_the_members_exact_link(templates: Templates) -> None:
    letter = make_letter()
    page = pypdfium2.PdfDocument(letters_pdf(templates, [letter]))[0]
    assert qr_codes_on(page) == [letter.link]


def test_a_batch_has_a_page_per_letter_each_in_its_members_language(
    batch: pypdfium2.PdfDocument,
) -> None:
    assert len(batch) == 3
    english, spanish, english_again = (text_of(batch[i]) for i in range(3))
    for number, text in enumerate((english, spanish, english_again)):
        letter = make_letter(number)
        assert letter.name in text
        assert all(line in text for line in letter.address_lines)
        assert qr_codes_on(batch[number]) == [letter.link]
    assert "Cómo votar" in spanish and "Su voto es secreto" in spanish
    assert "marzo de 2026" in spanish and "How to vote" not in spanish
    for text in (english, english_again):
        assert "How to vote" in text and "Your vote is secret" in text
        assert "Cómo votar" not in text
    assert make_letter(0).name not in spanish and make_letter(1).name not in english


def test_the_dates_are_in_the_organizations_zone_and_the_readers_locale(
    batch: pypdfium2.PdfDocument,
) -> None:
    # 16:00 UTC on 2 March is 8:00 in Los Angeles; 03:00 UTC on 10 March is 20:00 the day
    # before, daylight saving time having begun on 8 March.
    english, spanish = text_of(batch[0]), text_of(batch[1])
    assert "Monday, March 2, 2026, 8:00 AM (Pacific Time)" in english
    assert "Monday, March 9, 2026, 8:00 PM (Pacific Time)" in english
    assert "lunes, 2 de marzo de 2026, 8:00 (hora del Pacífico)" in spanish
    assert "lunes, 9 de marzo de 2026, 20:00 (hora del Pacífico)" in spanish


@pytest.mark.parametrize("paper", ["letter", "a4"])
def test_only_the_recipient_shows_through_the_envelope_window(
    templates: Templates, paper: Paper
) -> None:
    layout = LAYOUTS[paper]
    window, address = layout.window, layout.address
    # The address block lies where the window shows it at every position of the letter.
    assert window.left <= address.left and address.right <= window.right
    assert window.top <= address.top and address.bottom <= window.bottom
    letter = make_letter()
    page = pypdfium2.PdfDocument(letters_pdf(templates, [letter], paper=paper))[0]
    recipient = " ".join((letter.name, *letter.address_lines))
    assert text_in(page, window) == recipient
    assert text_in(page, address) == recipient
    # The organization sits above the window; the link and its code are outside it.
    assert letter.organization in text_in(page, Rect(0, 0, page.get_width(), window.top))
    assert printed_link(letter.link) in text_of(page)
    # Nothing else is drawn in the window either (the QR code, rules, fold marks): around
    # the address block, its pixels are white.
    scale = DPI / 72
    image = page.render(scale=scale).to_pil().convert("L")
    image.paste(
        255,
        tuple(round(v * scale) for v in (address.left, address.top, address.right, address.bottom)),
    )
    around = image.crop(
        tuple(round(v * scale) for v in (window.left, window.top, window.right, window.bottom))
    )
    assert around.getextrema()[0] > 250


def test_a4_letters_are_a4_pages_that_scan(templates: Templates) -> None:
    letters = [make_letter(0), make_letter(1, language="es")]
    pdf = pypdfium2.PdfDocument(letters_pdf(templates, letters, paper="a4"))
    assert len(pdf) == 2
    for page, letter in zip(pdf, letters, strict=True):
        assert (round(page.get_width()), round(page.get_height())) == (595, 842)
        assert qr_codes_on(page) == [letter.link]
    letter_paper = pypdfium2.PdfDocument(letters_pdf(templates, letters[:1]))[0]
    assert (round(letter_paper.get_width()), round(letter_paper.get_height())) == (612, 792)


def test_the_printed_link_opens_the_voting_page_with_or_without_its_dashes() -> None:
    letter = make_letter()
    printed = printed_link(letter.link)
    assert printed == "https://vote.example.org/v/k7dq-2mzx-4hb3-rnwa-5tyc-6pje-2f"
    path = "/" + printed.split("/", 3)[3]
    route = next(r for r in ROUTES if r.path == "/v/{credential}" and "GET" in r.methods)
    match, scope = route.matches({"type": "http", "path": path, "method": "GET"})
    assert match == Match.FULL
    assert credentials.parse(scope["path_params"]["credential"]) == CREDENTIALS[0]
    assert credentials.parse(printed.rpartition("/")[2].upper()) == CREDENTIALS[0]


HINTS = {
    SecondFactor.MEMBER_LAST4: "will ask for the last 4 characters of your member number",
    SecondFactor.BIRTH_YEAR: "will ask for your birth year",
    SecondFactor.POSTAL_CODE: "will ask for your postal code",
    SecondFactor.PHONE_LAST4: "will ask for the last 4 digits of your phone number",
    SecondFactor.NONE: "asks for nothing else",
}


def test_each_second_factor_is_named_and_no_answer_is_printed(templates: Templates) -> None:
    # A letter cannot carry a factor's value at all: nothing to leak through the window or
    # to the mail house.
    assert not {f.name for f in fields(Letter)} & {"member_number", "birth_year", "answer"}
    letters = [
        make_letter(number, factor=factor, name="Pat Organizer")
        for number, factor in enumerate(SecondFactor)
    ]
    pdf = pypdfium2.PdfDocument(letters_pdf(templates, letters))
    assert len(pdf) == len(HINTS)
    for page, letter in zip(pdf, letters, strict=True):
        text = text_of(page)
        assert HINTS[letter.factor] in text
        assert [hint for hint in HINTS.values() if hint in text] == [HINTS[letter.factor]]
        # Every number on the page, the dates aside, came from what the letter was given
        # (address, title, link), numbers the steps or is the 4 of "last 4 characters":
        # none is an answer.
        dates = re.search(r"Voting opens .* PM \(Pacific Time\)", text)
        assert dates is not None
        rest = text.replace(dates[0], "")
        given = " ".join((*letter.address_lines, letter.vote_title, letter.link, "1 2 3 4"))
        assert set(re.findall(r"\d+", rest)) <= set(re.findall(r"\d+", given))
    assert "keep it private" in text_of(pdf[list(SecondFactor).index(SecondFactor.NONE)])


def test_the_pdf_metadata_names_nobody(templates: Templates) -> None:
    letter = make_letter()
    data = letters_pdf(templates, [letter])
    metadata = pypdfium2.PdfDocument(data).get_metadata_dict()
    assert metadata["Title"] == "Voting letters · Ratify"
    values = " ".join(metadata.values())
    for secret in (letter.name, letter.address_lines[0], CREDENTIALS[0], letter.organization):
        assert secret not in values
    # Nor in bookmarks: a PDF outline would list every page's heading.
    assert b"/Outlines" not in data


def test_a_letter_needs_aware_dates_a_known_language_and_a_link_with_a_credential() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make_letter(opens_at=datetime(2026, 3, 2, 8, 0))  # noqa: DTZ001
    with pytest.raises(ValueError, match="language"):
        make_letter(language="fr")
    with pytest.raises(ValueError, match="credential"):
        make_letter(link="https://vote.example.org/v/ballot")


def test_an_empty_batch_is_refused(templates: Templates) -> None:
    with pytest.raises(ValueError, match="no letters"):
        letters_pdf(templates, [])
