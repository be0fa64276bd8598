"""Languages: which one a request gets, its message catalog, and locale-aware formatting.

The choice, in order: the signed-in user's saved language, the language cookie set by the
switcher, the browser's ``Accept-Language``, the installation's default.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import cache, lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.core import negotiate_locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

from ratify.settings import LANGUAGES, PROJECT_ROOT

TRANSLATIONS_DIR = PROJECT_ROOT / "translations"
LANGUAGE_COOKIE = "ratify_lang"
# Each language named in itself, for the switcher.
LANGUAGE_NAMES = {"en": "English", "es": "Español"}


def parse_accept_language(header: str) -> list[str]:
    """Languages from an Accept-Language header, most wanted first (q=0 means 'not this')."""
    weighted = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*":
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
                if not 0.0 <= quality <= 1.0:  # malformed (RFC 9110 §12.4.2): ignore the tag
                    quality = 0.0
        if quality > 0:
            weighted.append((-quality, position, tag.replace("_", "-")))
    return [tag for _, _, tag in sorted(weighted)]


def choose_language(
    *,
    user_language: str | None,
    cookie: str | None,
    accept_language: str | None,
    default: str,
) -> str:
    for candidate in (user_language, cookie):
        if candidate in LANGUAGES:
            return candidate
    if accept_language:
        preferred = parse_accept_language(accept_language)
        found = negotiate_locale(preferred, list(LANGUAGES), sep="-")
        if found is None:
            # "es-MX" should find "es" even when only the base language is offered.
            bases = [tag.split("-")[0].lower() for tag in preferred]
            found = next((b for b in bases if b in LANGUAGES), None)
        if found:
            return found
    return default


@cache
def translations(language: str, directory: Path = TRANSLATIONS_DIR) -> NullTranslations:
    """Compiled catalog for a language (``make messages`` compiles them); English is the
    source language and needs none."""
    if language == "en":
        return NullTranslations()
    return Translations.load(str(directory), [language], domain="messages")


class Formatter:
    """Dates and numbers as the reader's locale writes them, in the organization's zone."""

    def __init__(self, language: str) -> None:
        self.locale = Locale.parse(language)

    def date(self, value: date | None, format: str = "medium") -> str:
        return "" if value is None else format_date(value, format=format, locale=self.locale)

    def datetime(
        self, value: datetime | None, format: str = "medium", tz: str | None = None
    ) -> str:
        if value is None:
            return ""
        return _datetime_in(value, format, tz, self.locale)

    def number(self, value: float | int | None) -> str:
        return "" if value is None else format_decimal(value, locale=self.locale)


@lru_cache(maxsize=4096)
def _datetime_in(value: datetime, format: str, tz: str | None, locale: Locale) -> str:
    """Babel's formatting, kept: a ballot page shows the same closing time to every member,
    and formatting it (about a tenth of the page's time) gives the same text each time."""
    zone = ZoneInfo(tz) if tz else None
    return format_datetime(value, format=format, tzinfo=zone, locale=locale)
