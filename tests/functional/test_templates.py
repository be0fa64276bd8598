from __future__ import annotations

import re

import pytest

from ratify.settings import LANGUAGES
from ratify.web.templating import TEMPLATES_DIR, Templates

TEMPLATE_NAMES = sorted(str(p.relative_to(TEMPLATES_DIR)) for p in TEMPLATES_DIR.rglob("*.html"))


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_every_template_compiles_in_every_language(name: str) -> None:
    templates = Templates()
    for language in LANGUAGES:
        templates.environment(language).get_template(name)


# Staff pages that a small same-origin script improves, and that work without it: the
# progress of a large import or of a big voter list being frozen (a timed refresh fails WCAG
# 2.2.1; the page has a link instead). Member-facing pages stay free of JavaScript.
ENHANCED = {"rosters/import_progress.html": "progress.js", "votes/detail.html": "progress.js"}


def test_every_page_template_sets_language_and_viewport() -> None:
    base = (TEMPLATES_DIR / "base.html").read_text(encoding="utf-8")
    assert '<html lang="{{ lang }}">' in base
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in base
    assert 'class="skip-link" href="#main"' in base and '<main id="main"' in base
    for name in TEMPLATE_NAMES:
        if name == "base.html" or name.rsplit("/", 1)[-1].startswith("_"):
            continue  # the layout, and partials (macros) that pages import
        source = (TEMPLATES_DIR / name).read_text(encoding="utf-8")
        assert source.startswith('{% extends "base.html" %}'), name
        assert "style=" not in source, name
        scripts = re.findall(r"<script[^>]*>", source)
        if name in ENHANCED:
            assert scripts == [f'<script src="/static/{ENHANCED[name]}" defer>'], name
        else:
            assert not scripts, name
