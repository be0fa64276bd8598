"""Hostile input never escapes: property tests over the small parsers at the edge."""

from __future__ import annotations

from urllib.parse import urljoin

from hypothesis import given
from hypothesis import strategies as st

from ratify.settings import LANGUAGES
from ratify.web.i18n import choose_language, parse_accept_language
from ratify.web.routing import safe_next


@given(st.text())
def test_next_target_never_leaves_the_site(target: str) -> None:
    resolved = urljoin("https://ratify.example/", safe_next(target))
    assert resolved.startswith("https://ratify.example/")


@given(st.text(), st.one_of(st.none(), st.text()), st.one_of(st.none(), st.text()))
def test_any_language_input_yields_a_supported_language(
    header: str, cookie: str | None, saved: str | None
) -> None:
    assert parse_accept_language(header) is not None
    chosen = choose_language(
        user_language=saved, cookie=cookie, accept_language=header, default="en"
    )
    assert chosen in LANGUAGES
