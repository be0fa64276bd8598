"""What a notice says: the default texts per kind, channel and language, the placeholders
staff may use, and filling them in for one member.

Placeholders are a fixed list of names in braces (``{name}``, ``{link}``, ...), replaced by
plain substitution: a template cannot reach anything but these values, and a brace staff did
not mean as a placeholder is refused when the text is saved, not discovered at send time.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ratify.errors import N_
from ratify.notices.models import MessageChannel, MessageKind
from ratify.web.i18n import translations

PLACEHOLDERS: dict[str, str] = {
    "name": N_("the member's name"),
    "organization": N_("the organization's name"),
    "vote": N_("the vote's title"),
    "opens": N_("when voting opens"),
    "closes": N_("when voting closes"),
    "link": N_("the member's personal link"),
}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class Text:
    subject: str  # email only
    body: str


_SMS_STOP = N_("Reply STOP to stop texts.")

# English source texts; each language's catalog translates them (make messages).
DEFAULTS: dict[MessageKind, dict[MessageChannel, Text]] = {
    MessageKind.ANNOUNCEMENT: {
        MessageChannel.EMAIL: Text(
            N_("Vote now: {vote}"),
            N_(
                "Hello {name},\n\n"
                "{organization} is holding a secret-ballot vote: {vote}.\n\n"
                "Voting is open from {opens} until {closes}.\n\n"
                "Your personal link to vote (it is yours alone: do not forward it):\n"
                "{link}\n\n"
                "Open it on your phone or computer, confirm who you are, read the summary "
                "and vote. Your vote is secret: nobody, not even {organization}, can see how you "
                "voted. Keep the receipt code you are shown at the end.\n"
            ),
        ),
        MessageChannel.SMS: Text(
            "", N_("{organization}: vote on {vote} by {closes}. Your personal link: {link}")
        ),
    },
    MessageKind.REMINDER: {
        MessageChannel.EMAIL: Text(
            N_("Reminder: you have not voted yet on {vote}"),
            N_(
                "Hello {name},\n\n"
                "You have not voted yet on {vote}. Voting closes {closes}.\n\n"
                "Your personal link to vote:\n{link}\n\n"
                "Your vote is secret. If you have voted since this message was sent, thank "
                "you: nothing more to do.\n"
            ),
        ),
        MessageChannel.SMS: Text(
            "", N_("{organization}: you have not voted yet on {vote}. Closes {closes}: {link}")
        ),
    },
    MessageKind.RESULT: {
        MessageChannel.EMAIL: Text(
            N_("Result: {vote}"),
            N_(
                "Hello {name},\n\n"
                "The result of {vote} has been certified by the election committee. Read it, "
                "and check that your receipt code is among those counted, through your "
                "personal link:\n{link}\n"
            ),
        ),
        MessageChannel.SMS: Text("", N_("{organization}: the result of {vote} is out: {link}")),
    },
    MessageKind.LINK_REISSUED: {
        MessageChannel.EMAIL: Text(
            N_("Your new voting link for {vote}"),
            N_(
                "Hello {name},\n\n"
                "Your personal link for {vote} has been replaced: the old link no longer "
                "works. If you did not ask for this, tell {organization}.\n\n"
                "Your new link:\n{link}\n"
            ),
        ),
        MessageChannel.SMS: Text(
            "", N_("{organization}: your old link for {vote} no longer works. New link: {link}")
        ),
    },
    MessageKind.PASSWORD_RESET: {
        MessageChannel.EMAIL: Text(
            N_("Reset your Ratify password"),
            N_(
                "Hello {name},\n\n"
                "Someone (we hope you) asked to reset your Ratify password. To choose a new "
                "one, open this link; it works once, for a limited time:\n{link}\n\n"
                "If you did not ask, ignore this message: your password stays as it is.\n"
            ),
        ),
    },
}


def default_text(kind: MessageKind, channel: MessageChannel, language: str) -> Text:
    source = DEFAULTS[kind][channel]
    gettext = translations(language).gettext
    body = gettext(source.body)
    if channel == MessageChannel.SMS:
        body = f"{body} {gettext(_SMS_STOP)}"
    return Text(gettext(source.subject) if source.subject else "", body)


def unknown_placeholders(text: str) -> list[str]:
    """Braces that are not one of PLACEHOLDERS (a typo, or code someone pasted)."""
    found = [m.group(0) for m in _PLACEHOLDER.finditer(text) if m.group(1) not in PLACEHOLDERS]
    rest = _PLACEHOLDER.sub("", text)
    return found + [brace for brace in "{}" if brace in rest]


def fill(text: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def to_html(body: str, link: str) -> str:
    """The plain text as simple HTML: paragraphs, line breaks, the link clickable; every
    value escaped (a member's name is whatever the roster said)."""
    escaped_link = html.escape(link, quote=True)
    paragraphs = []
    for block in re.split(r"\n\s*\n", body.strip()):
        lines = html.escape(block).split("\n")
        joined = "<br>\n".join(lines)
        if link:
            joined = joined.replace(
                html.escape(link), f'<a href="{escaped_link}">{html.escape(link)}</a>'
            )
        paragraphs.append(f"<p>{joined}</p>")
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>'
        '<body style="font-family: sans-serif; font-size: 16px; line-height: 1.5">\n'
        + "\n".join(paragraphs)
        + "\n</body></html>\n"
    )


@functools.lru_cache(maxsize=256)
def html_template(body: str) -> str:
    """A text template as an HTML template (``to_html`` with the link's placeholder as the
    link), made once per text: ``fill_html`` then puts each member's escaped values in."""
    return to_html(body, "{link}")


def fill_html(body: str, values: Mapping[str, str]) -> str:
    escaped = {key: html.escape(value, quote=True) for key, value in values.items()}
    return fill(html_template(body), escaped)
