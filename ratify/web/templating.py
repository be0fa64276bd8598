"""The Jinja2 environment: autoescaped, with gettext bound per language (one overlay each)."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from ratify.settings import LANGUAGES, PROJECT_ROOT
from ratify.web.i18n import LANGUAGE_NAMES, Formatter, translations

TEMPLATES_DIR = PROJECT_ROOT / "templates"


class Templates:
    def __init__(self, *, auto_reload: bool = False) -> None:
        # One environment per language: each has its own gettext, formatters and cache.
        self._by_language = {
            language: self._environment(language, auto_reload) for language in LANGUAGES
        }

    @staticmethod
    def _environment(language: str, auto_reload: bool) -> Environment:
        env = Environment(
            loader=FileSystemLoader(TEMPLATES_DIR),
            autoescape=select_autoescape(["html", "xml"]),
            undefined=StrictUndefined,
            extensions=["jinja2.ext.i18n"],
            auto_reload=auto_reload,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
        fmt = Formatter(language)
        env.filters["date"] = fmt.date
        env.filters["datetime"] = fmt.datetime
        env.filters["number"] = fmt.number
        env.globals["lang"] = language
        env.globals["language_names"] = LANGUAGE_NAMES
        return env

    def environment(self, language: str) -> Environment:
        return self._by_language[language]

    def render(self, language: str, name: str, context: dict[str, Any]) -> str:
        return self.environment(language).get_template(name).render(context)

    def gettext(self, language: str, message: str, **params: Any) -> str:
        text = translations(language).gettext(message)
        return text % params if params else text
