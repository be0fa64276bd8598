"""Languages: complete catalogs, choosing a language, the switcher, locale formatting and
translated error pages."""

from __future__ import annotations

import gettext
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette

from ratify.app import create_app
from ratify.settings import LANGUAGES, PROJECT_ROOT, Settings
from ratify.web.i18n import LANGUAGE_COOKIE, Formatter, choose_language, parse_accept_language
from ratify.web.templating import Templates
from tests.conftest import SecretLedger, make_client
from tests.factories import make_org, make_user
from tests.helpers import login, post_form

TRANSLATIONS = PROJECT_ROOT / "translations"
TEMPLATE_POT = TRANSLATIONS / "messages.pot"
# Every language but the source language has a catalog of its own.
CATALOGS = {
    language: TRANSLATIONS / language / "LC_MESSAGES" / "messages.po"
    for language in LANGUAGES
    if language != "en"
}
JINJA_EXTRACTOR = "jinja2.ext:babel_extract"
PLACEHOLDER = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa%]")

# Strings that only the Spanish pages say (and the English ones never do).
ES_SIGN_IN = "Iniciar sesión"
ES_NOT_FOUND_TITLE = "Página no encontrada"
ES_NOT_FOUND_MESSAGE = "Aquí no hay nada. Revise la dirección."


# -- every message in every catalog ---------------------------------------------------------

MessageKey = tuple[str, str | None]  # (msgid, msgctxt)


def _extract_source_messages() -> dict[MessageKey, str]:
    """What ``make extract-messages`` extracts, done in-process: key -> where it was found."""
    with open(PROJECT_ROOT / "babel.cfg", encoding="utf-8") as fileobj:
        method_map, options_map = parse_mapping_cfg(fileobj, "babel.cfg")
    method_map = [
        (pattern, JINJA_EXTRACTOR if method == "jinja2" else method)
        for pattern, method in method_map
    ]
    keywords = {**DEFAULT_KEYWORDS, "N_": None}
    found: dict[MessageKey, str] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(PROJECT_ROOT), method_map, options_map, keywords=keywords
    ):
        msgid = message[0] if isinstance(message, (list, tuple)) else message
        if msgid:
            found.setdefault((msgid, context), f"{filename}:{lineno}")
    return found


@pytest.fixture(scope="module")
def source_messages() -> dict[MessageKey, str]:
    found = _extract_source_messages()
    # Not vacuous: both the templates and the N_() markers in Python were read.
    where = " ".join(found.values())
    assert "templates/" in where, where[:500]
    assert "ratify/" in where, where[:500]
    return found


def _read_catalog(path: Path) -> Catalog:
    assert path.exists(), f"{path.relative_to(PROJECT_ROOT)} is missing: run `make messages`"
    with open(path, "rb") as fileobj:
        return read_po(fileobj)


def _strings(message: Message) -> list[str]:
    return list(message.string) if isinstance(message.string, (list, tuple)) else [message.string]


def _ids(message: Message) -> list[str]:
    return list(message.id) if isinstance(message.id, (list, tuple)) else [message.id]


def _placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def test_the_message_template_holds_every_message_in_the_source(
    source_messages: dict[MessageKey, str],
) -> None:
    pot = _read_catalog(TEMPLATE_POT)
    stale = sorted(
        f"{where}: {msgid!r}"
        for (msgid, context), where in source_messages.items()
        if pot.get(msgid, context=context) is None
    )
    assert not stale, (
        "translations/messages.pot is out of date; run `make extract-messages`:\n"
        + "\n".join(stale)
    )


def _untranslated(catalog: Catalog, source_messages: dict[MessageKey, str]) -> list[str]:
    problems = []
    for (msgid, context), where in sorted(source_messages.items()):
        message = catalog.get(msgid, context=context)
        if message is None:
            problems.append(f"{where}: not in the catalog: {msgid!r}")
        elif message.fuzzy:
            problems.append(f"{where}: fuzzy: {msgid!r}")
        elif not all(s.strip() for s in _strings(message)):
            problems.append(f"{where}: not translated: {msgid!r}")
    return problems


@pytest.mark.parametrize("language", sorted(CATALOGS))
def test_every_message_in_the_source_is_translated(
    language: str, source_messages: dict[MessageKey, str]
) -> None:
    problems = _untranslated(_read_catalog(CATALOGS[language]), source_messages)
    assert not problems, (
        f"{language} catalog is incomplete (`make extract-messages`, then translate):\n"
        + "\n".join(problems)
    )


def test_the_completeness_check_notices_missing_fuzzy_and_empty_messages(
    source_messages: dict[MessageKey, str],
) -> None:
    catalog = _read_catalog(CATALOGS["es"])
    catalog.delete("Sign in")
    catalog["Sign out"].flags.add("fuzzy")
    catalog["Your account"].string = ""
    problems = _untranslated(catalog, source_messages)
    assert len(problems) == 3
    assert any("not in the catalog: 'Sign in'" in p for p in problems)
    assert any("fuzzy: 'Sign out'" in p for p in problems)
    assert any("not translated: 'Your account'" in p for p in problems)


@pytest.mark.parametrize("language", sorted(CATALOGS))
def test_translations_keep_the_placeholders_of_their_message(language: str) -> None:
    catalog = _read_catalog(CATALOGS[language])
    # Babel's own checks (python-format compatibility, plural forms).
    problems = [f"{m.id!r}: {errors}" for m, errors in catalog.check()]
    for message in catalog:
        if not message.id:
            continue
        expected = set().union(*(_placeholders(i) for i in _ids(message)))
        params = dict.fromkeys(expected, "x")
        for string in _strings(message):
            if not string:
                continue
            if _placeholders(string) != expected:
                got = sorted(_placeholders(string))
                problems.append(f"{message.id!r}: placeholders {got} != {sorted(expected)}")
            if message.python_format or "%" in string:
                # Templates format every message (newstyle gettext), parameters or not: a
                # stray '%' in a translation would break the page.
                try:
                    string % params
                except (KeyError, ValueError, TypeError) as exc:
                    problems.append(f"{message.id!r}: {string!r} cannot be formatted: {exc!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("language", sorted(CATALOGS))
def test_the_compiled_catalog_matches_its_source(language: str) -> None:
    """The pages read the compiled .mo; a stale or missing one shows English silently."""
    po = CATALOGS[language]
    mo = po.with_suffix(".mo")
    assert mo.exists(), f"{mo.relative_to(PROJECT_ROOT)} is missing: run `make messages`"
    with open(mo, "rb") as fileobj:
        compiled = gettext.GNUTranslations(fileobj)
    stale = [
        message.id
        for message in _read_catalog(po)
        if message.id
        and isinstance(message.id, str)
        and message.context is None
        and not message.fuzzy
        and compiled.gettext(message.id) != message.string
    ]
    assert not stale, (
        f"{mo.relative_to(PROJECT_ROOT)} is out of date: run `make messages`: {stale[:5]}"
    )


# -- choosing the language from the request --------------------------------------------------


@pytest.fixture
def spanish_default_client(
    settings: Settings, sessions: sessionmaker[Session], secret_ledger: SecretLedger
) -> Iterator[object]:
    """An installation whose default language is Spanish: English must be asked for."""
    app: Starlette = create_app(replace(settings, default_language="es"), sessions=sessions)
    with make_client(app, secret_ledger, follow_redirects=False) as test_client:
        yield test_client


def _lang(html: str) -> str:
    match = re.search(r'<html lang="([^"]+)"', html)
    assert match, html[:200]
    return match.group(1)


def test_a_mexican_spanish_browser_gets_spanish(client) -> None:
    response = client.get("/login", headers={"Accept-Language": "es-MX,es;q=0.9"})
    assert response.status_code == 200
    assert _lang(response.text) == "es"
    assert f"<h1>{ES_SIGN_IN}</h1>" in response.text
    assert "Correo electrónico" in response.text
    assert "Sign in" not in response.text


def test_a_browser_that_prefers_an_unoffered_language_gets_its_next_choice(
    spanish_default_client,
) -> None:
    response = spanish_default_client.get("/login", headers={"Accept-Language": "fr, en;q=0.5"})
    assert _lang(response.text) == "en"
    assert "<h1>Sign in</h1>" in response.text


def test_a_browser_with_no_offered_language_gets_the_installation_default(
    spanish_default_client, client
) -> None:
    french = {"Accept-Language": "fr"}
    assert _lang(spanish_default_client.get("/login", headers=french).text) == "es"
    assert _lang(client.get("/login", headers=french).text) == "en"


def test_spanish_refused_with_q_zero_is_not_chosen(spanish_default_client) -> None:
    response = spanish_default_client.get("/login", headers={"Accept-Language": "es;q=0, en;q=0.1"})
    assert _lang(response.text) == "en"
    assert ES_SIGN_IN not in response.text


def test_choose_language_order_is_user_then_cookie_then_browser_then_default() -> None:
    def pick(user: str | None, cookie: str | None, header: str | None) -> str:
        return choose_language(
            user_language=user, cookie=cookie, accept_language=header, default="en"
        )

    assert pick("es", "en", "en") == "es"
    assert pick(None, "es", "en") == "es"
    assert pick(None, None, "es") == "es"
    assert pick(None, None, None) == "en"
    # Unknown values at any step fall through to the next one.
    assert pick("xx", "yy", "es-AR") == "es"
    assert pick(None, "<script>", "fr") == "en"


# -- the language switch ---------------------------------------------------------------------


def test_the_language_switch_sets_a_cookie_that_later_pages_obey(client) -> None:
    response = post_form(
        client, "/language", {"language": "es", "next": "/login"}, form_page="/login"
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert f"{LANGUAGE_COOKIE}=es" in response.headers["set-cookie"]
    page = client.get("/login", headers={"Accept-Language": "en"})
    assert _lang(page.text) == "es"
    assert ES_SIGN_IN in page.text


def test_the_language_switch_ignores_an_unoffered_language(client) -> None:
    response = post_form(
        client, "/language", {"language": "xx", "next": "/login"}, form_page="/login"
    )
    assert response.status_code == 303
    assert LANGUAGE_COOKIE not in response.headers.get("set-cookie", "")
    assert _lang(client.get("/login").text) == "en"


def test_the_language_switch_only_returns_to_this_site(client) -> None:
    response = post_form(
        client, "/language", {"language": "es", "next": "//evil.example/"}, form_page="/login"
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_a_signed_in_users_choice_is_saved_on_their_account(db: Session, client) -> None:
    org = make_org(db)
    user = make_user(db, org)
    assert login(client, user.email).status_code == 303
    home = f"/o/{org.slug}/"
    response = post_form(client, "/language", {"language": "es", "next": home}, form_page=home)
    assert response.status_code == 303
    assert response.headers["location"] == home
    db.refresh(user)
    assert user.language == "es"
    # The account remembers it without the cookie, whatever the browser says.
    client.cookies.delete(LANGUAGE_COOKIE)
    page = client.get(home, headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert _lang(page.text) == "es"
    assert "Su rol aquí: Administrador." in page.text


# -- dates and numbers -----------------------------------------------------------------------


def test_dates_are_written_as_the_locale_writes_them() -> None:
    day = date(2026, 3, 5)
    assert Formatter("en").date(day) == "Mar 5, 2026"
    assert Formatter("es").date(day) == "5 mar 2026"
    assert Formatter("es").date(day, "long") == "5 de marzo de 2026"
    assert Formatter("es").date(None) == ""


def test_times_are_written_as_the_locale_writes_them() -> None:
    moment = datetime(2026, 3, 5, 14, 30, tzinfo=UTC)
    assert Formatter("es").datetime(moment, "short", "UTC") == "5/3/26, 14:30"
    assert Formatter("en").datetime(moment, "short", "UTC") == "3/5/26, 2:30\u202fPM"


def test_numbers_are_written_as_the_locale_writes_them() -> None:
    assert Formatter("en").number(1234567.5) == "1,234,567.5"
    assert Formatter("es").number(1234567.5) == "1.234.567,5"
    assert Formatter("es").number(None) == ""


def test_templates_format_dates_and_numbers_in_their_language() -> None:
    templates = Templates()
    context = {"n": 1234567.5, "d": date(2026, 3, 5)}

    def render(language: str) -> str:
        return (
            templates.environment(language)
            .from_string("{{ n|number }} · {{ d|date }}")
            .render(context)
        )

    assert render("en") == "1,234,567.5 · Mar 5, 2026"
    assert render("es") == "1.234.567,5 · 5 mar 2026"


# -- parsing Accept-Language -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", []),
        ("es", ["es"]),
        ("es-MX,es;q=0.9,en;q=0.8", ["es-MX", "es", "en"]),
        ("en;q=0.5, es", ["es", "en"]),
        # Equal weights keep the browser's order.
        ("fr;q=0.7, es;q=0.7, en;q=0.7", ["fr", "es", "en"]),
        ("  es-AR ;  q=0.4 , en ", ["en", "es-AR"]),
        ("es_MX", ["es-MX"]),
        # q=0 means "not this one".
        ("es;q=0, en", ["en"]),
        ("es;q=0.0, en;q=0.000", []),
        # The wildcard names no language.
        ("*", []),
        ("*;q=0.5, es", ["es"]),
        # Empty items and other parameters are skipped.
        (",,es,,", ["es"]),
        ("es;level=1;q=0.5, en;q=0.6", ["en", "es"]),
    ],
)
def test_parse_accept_language(header: str, expected: list[str]) -> None:
    assert parse_accept_language(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "es;q=abc, en;q=0.5",
        "es;q=, en;q=0.5",
        "es;q, en;q=0.5",
        "es;q=nan, en;q=0.5",
        "es;q=0.5.5, en;q=0.5",
    ],
)
def test_a_malformed_q_value_does_not_win(header: str) -> None:
    assert parse_accept_language(header) == ["en"]


@pytest.mark.parametrize("header", ["es;q=2, en", "es;q=inf, en", "es;q=1e9, en"])
def test_a_q_value_above_one_does_not_outrank_the_others(header: str) -> None:
    assert parse_accept_language(header)[0] == "en"


def test_garbage_headers_do_not_break_the_choice() -> None:
    for header in [";;;", "q=0.5", ";q=1", "\x00", "es;q=" + "9" * 400, "," * 1000]:
        assert isinstance(parse_accept_language(header), list)
        choose_language(user_language=None, cookie=None, accept_language=header, default="en")


# -- error pages -----------------------------------------------------------------------------


def test_a_missing_organization_page_is_explained_in_spanish(db: Session, client) -> None:
    user = make_user(db, make_org(db))
    assert login(client, user.email).status_code == 303
    response = client.get("/o/nonexistent/", headers={"Accept-Language": "es"})
    assert response.status_code == 404
    assert _lang(response.text) == "es"
    assert ES_NOT_FOUND_TITLE in response.text
    assert ES_NOT_FOUND_MESSAGE in response.text
    assert "Ir a la página de inicio" in response.text
    assert "Page not found" not in response.text


def test_a_missing_page_is_explained_in_english_to_an_english_browser(client) -> None:
    response = client.get("/no-such-page", headers={"Accept-Language": "en"})
    assert response.status_code == 404
    assert _lang(response.text) == "en"
    assert "Page not found" in response.text


def test_error_pages_follow_the_signed_in_users_saved_language(db: Session, client) -> None:
    org = make_org(db)
    user = make_user(db, org)
    assert login(client, user.email).status_code == 303
    home = f"/o/{org.slug}/"
    post_form(client, "/language", {"language": "es", "next": home}, form_page=home)
    client.cookies.delete(LANGUAGE_COOKIE)
    response = client.get("/o/nonexistent/", headers={"Accept-Language": "en"})
    assert response.status_code == 404
    assert ES_NOT_FOUND_TITLE in response.text


def test_kept_datetime_formatting_is_babels_for_each_zone_and_language() -> None:
    """Formatted times are kept (a ballot page shows every member the same closing time):
    each zone, format and language still gets its own text, the one Babel writes."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from babel.dates import format_datetime

    from ratify.web.i18n import Formatter

    when = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)
    seen = set()
    for language in ("en", "es"):
        for zone in ("America/Chicago", "Europe/Madrid"):
            for form in ("short", "long"):
                text = Formatter(language).datetime(when, form, zone)
                again = Formatter(language).datetime(when, form, zone)
                direct = format_datetime(
                    when, format=form, tzinfo=ZoneInfo(zone), locale=Formatter(language).locale
                )
                assert text == again == direct
                seen.add(text)
    assert len(seen) == 8
