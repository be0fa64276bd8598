"""Printed letters that carry members their personal links: one PDF, one page per member, for
a mail house or the union's own printer, each page in its member's language.

A letter is read by the mail house and partly through an envelope window, so it holds the
link and the *kind* of second factor, never the factor's value (DESIGN.md §4 rule 4), and the
PDF's metadata names nobody."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import segno
from babel import Locale
from babel.dates import format_date, format_time, get_timezone_name
from jinja2.utils import concat
from markupsafe import Markup

from ratify.errors import N_
from ratify.settings import LANGUAGES
from ratify.votes import credentials
from ratify.votes.models import SecondFactor
from ratify.web.pdf import html_to_pdf
from ratify.web.templating import Templates

Paper = Literal["letter", "a4"]
TEMPLATE = "notices/letter.html"
GROUP = 4  # characters of the credential between dashes, as printed
INCH = 72.0  # PDF points
MM = INCH / 25.4

# What the page asks for besides the link: the kind of answer, never the answer itself.
# (A postal code is usually in the address the letter shows: such a vote's voters are
# better reached by another factor than by letter.)
FACTOR_HINTS = {
    SecondFactor.MEMBER_LAST4: N_(
        "To check that it is you, the voting page will ask for the last 4 characters of "
        "your member number."
    ),
    SecondFactor.BIRTH_YEAR: N_(
        "To check that it is you, the voting page will ask for your birth year."
    ),
    SecondFactor.POSTAL_CODE: N_(
        "To check that it is you, the voting page will ask for your postal code."
    ),
    SecondFactor.PHONE_LAST4: N_(
        "To check that it is you, the voting page will ask for the last 4 digits of your "
        "phone number."
    ),
    SecondFactor.NONE: N_(
        "The voting page asks for nothing else: anyone holding this letter could vote in "
        "your place, so keep it private."
    ),
}


@dataclass(frozen=True)
class Letter:
    """What one member's letter says, resolved by the caller."""

    language: str
    name: str
    address_lines: tuple[str, ...]
    organization: str
    vote_title: str
    opens_at: datetime
    closes_at: datetime
    timezone: str
    link: str
    factor: SecondFactor

    def __post_init__(self) -> None:
        if self.language not in LANGUAGES:
            raise ValueError(f"no such language: {self.language!r}")
        if self.opens_at.utcoffset() is None or self.closes_at.utcoffset() is None:
            raise ValueError("a letter's dates must be timezone-aware")
        ZoneInfo(self.timezone)  # an unknown zone fails here, not halfway through a batch
        if credentials.parse(self.link.rpartition("/")[2]) is None:
            raise ValueError("a letter's link must end with a credential")


@dataclass(frozen=True)
class Rect:
    """A rectangle on the page in PDF points, measured from the page's top-left corner."""

    left: float
    top: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height


@dataclass(frozen=True)
class Layout:
    size: str  # CSS @page size
    width: float
    height: float
    # Where an envelope's window can show the page, wherever the folded letter slides inside
    # the envelope: nothing but the recipient is printed here.
    window: Rect
    # The recipient block: in the window at every position of the letter.
    address: Rect
    folds: tuple[float, ...]  # from the top; the letter's text begins below the first
    sender_top: float
    margin_left: float
    margin_right: float


def _window_layout(
    *,
    size: str,
    width: float,
    height: float,
    fold: float,
    envelope_width: float,
    envelope_height: float,
    window_left: float,
    window_bottom: float,
    window_width: float,
    window_height: float,
    address_inset: float,
    address: Rect | None = None,
    sender_top: float,
    margin_left: float,
    margin_right: float,
) -> Layout:
    """The page geometry for a letter folded in three (address panel outwards, its top edge
    up) in a window envelope. The window is given as envelopes are specified (from the
    envelope's left and bottom edges); the folded letter can slide by the difference in
    size, so the window region is the union of the window over all positions, and the
    address goes where they all overlap (less ``address_inset`` at the sides)."""
    ride = envelope_height - fold  # how far the folded letter can rise off the bottom
    slide = envelope_width - width  # and move across
    # With the letter at the envelope's bottom its top edge is `fold` above that bottom;
    # as it rides up, the window shows the page lower down.
    top_at_rest = fold - window_bottom - window_height
    left_most = max(0.0, window_left - slide)
    window = Rect(
        left=left_most,
        top=top_at_rest,
        width=window_left + window_width - left_most,
        height=window_height + ride,
    )
    if address is None:
        address = Rect(
            left=window_left + address_inset,
            top=top_at_rest + ride,
            width=window_width - slide - 2 * address_inset,
            height=window_height - ride,
        )
    return Layout(
        size=size,
        width=width,
        height=height,
        window=window,
        address=address,
        folds=(fold, 2 * fold),
        sender_top=sender_top,
        margin_left=margin_left,
        margin_right=margin_right,
    )


LAYOUTS: dict[Paper, Layout] = {
    # US Letter folded in three into a #10 envelope (4⅛ × 9½ in) with the standard single
    # window: 4½ × 1⅛ in, ⅞ in from the left and ½ in from the bottom edge. The 3⅔ in
    # letter can ride ~0.46 in up and 1 in across, which leaves 3.25 × 0.67 in that always
    # shows through the window: room for 4 lines (5 set smaller).
    "letter": _window_layout(
        size="letter",
        width=8.5 * INCH,
        height=11 * INCH,
        fold=11 * INCH / 3,
        envelope_width=9.5 * INCH,
        envelope_height=4.125 * INCH,
        window_left=0.875 * INCH,
        window_bottom=0.5 * INCH,
        window_width=4.5 * INCH,
        window_height=1.125 * INCH,
        address_inset=0.125 * INCH,
        sender_top=0.5 * INCH,
        margin_left=1 * INCH,
        margin_right=0.75 * INCH,
    ),
    # A4 per DIN 5008 form B (folds at 105 and 210 mm) into a DL envelope (110 × 220 mm)
    # with the DIN 680 window: 90 × 45 mm, 20 mm from the left and 15 mm from the bottom
    # (C5/6 puts its window in the same place). The recipient goes in DIN 5008's address
    # zone: 25 mm from the left (the 20 mm field plus its 5 mm indent), 62.7 to 90 mm from
    # the top, below the field's 17.7 mm endorsement zone, which stays empty here.
    "a4": _window_layout(
        size="A4",
        width=210 * MM,
        height=297 * MM,
        fold=105 * MM,
        envelope_width=220 * MM,
        envelope_height=110 * MM,
        window_left=20 * MM,
        window_bottom=15 * MM,
        window_width=90 * MM,
        window_height=45 * MM,
        address_inset=5 * MM,
        address=Rect(left=25 * MM, top=62.7 * MM, width=75 * MM, height=27.3 * MM),
        sender_top=15 * MM,
        margin_left=25 * MM,
        margin_right=20 * MM,
    ),
}


def printed_link(link: str) -> str:
    """The link as printed for typing: the credential in dashed groups of 4 (the voting page
    reads a credential with or without them)."""
    base, _, credential = link.rpartition("/")
    groups = [credential[i : i + GROUP] for i in range(0, len(credential), GROUP)]
    return f"{base}/{'-'.join(groups)}"


def qr_svg(link: str) -> Markup:
    """A QR code of the exact link, as inline SVG scaled by the page (its 4-module quiet
    zone included); error level Q survives a crease or a smudge on paper."""
    code = segno.make(link, error="q", micro=False)
    # Safe as markup: segno writes only path data and the fixed class, never the link's text.
    svg = code.svg_inline(omitsize=True, border=4, svgclass="qr", lineclass=None)
    return Markup(svg)  # noqa: S704


def _when(locale: Locale, value: datetime, zone: ZoneInfo) -> str:
    """A moment as the reader's locale writes a full date and a short time, in the
    organization's zone, named the way people say it ("Central Time")."""
    local = value.astimezone(zone)
    day = format_date(local.date(), "full", locale=locale)
    time = format_time(local, "short", tzinfo=zone, locale=locale)
    # The locale's pattern for joining them ("{1}, {0}"), without its quoted literals.
    both = str(locale.datetime_formats["full"]).replace("'", "").format(time, day)
    # UTC has no regional name (babel says "Unknown Region (UTC) Time").
    name = (
        "UTC" if zone.key in {"UTC", "Etc/UTC"} else get_timezone_name(zone, "long", locale=locale)
    )
    return f"{both} ({name})"


def _page(templates: Templates, letter: Letter, layout: Layout) -> str:
    """One letter's page, rendered once, in its member's language: the template's ``letter``
    block alone, so that a batch is one document with a page per letter."""
    env = templates.environment(letter.language)
    template = env.get_template(TEMPLATE)
    locale = Locale.parse(letter.language)
    zone = ZoneInfo(letter.timezone)
    context: dict[str, Any] = {
        "letter": letter,
        "layout": layout,
        "opens": _when(locale, letter.opens_at, zone),
        "closes": _when(locale, letter.closes_at, zone),
        "factor_hint": templates.gettext(letter.language, FACTOR_HINTS[letter.factor]),
        "printed_link": printed_link(letter.link),
        "qr": qr_svg(letter.link),
    }
    return concat(template.blocks["letter"](template.new_context(context)))


def letters_pdf(
    templates: Templates, letters: Sequence[Letter], *, paper: Paper = "letter"
) -> bytes:
    """One PDF with a page per letter, in order, each in its member's language."""
    if not letters:
        raise ValueError("no letters to print")
    layout = LAYOUTS[paper]
    # Each page comes out of the autoescaped template already escaped.
    pages = Markup("").join(
        Markup(_page(templates, letter, layout))  # noqa: S704
        for letter in letters
    )
    # The document around the pages names nobody: its title becomes the PDF's title.
    html = templates.render(
        letters[0].language,
        TEMPLATE,
        {"pages": pages, "layout": layout, "user": None, "org": None, "languages": None},
    )
    return html_to_pdf(html)
