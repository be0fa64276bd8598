"""The tentative agreement's documents: a full-text PDF (checked to be one) and a summary in
Markdown, rendered by markdown-it-py and sanitized by nh3 so no script or foreign asset ever
reaches a member's page."""

from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt

from ratify.errors import N_, BadRequest, PayloadTooLarge

MAX_PDF_BYTES = 20 * 1024 * 1024
MAX_SUMMARY_CHARS = 20_000

# Raw HTML in the Markdown is not rendered at all ("js-default" turns it off); nh3 then keeps
# only these tags, and links only to the web or mail. No images: member pages load nothing
# from elsewhere (and the summary should read on a slow phone).
_MARKDOWN = MarkdownIt("js-default")
_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "ul", "ol", "li",
    "blockquote", "code", "pre", "a", "table", "thead", "tbody", "tr", "th", "td", "del",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}


_HEADING = re.compile(r"<(/?)h([1-6])>")


def render_summary(markdown: str) -> str:
    """Sanitized HTML for a summary. Its headings start at h3 (whether written # or ##), in
    order: the ballot page owns its h1 and h2, and screen readers navigate by level."""
    html = _MARKDOWN.render(markdown)
    levels = [int(level) for _, level in _HEADING.findall(html)]
    if levels:
        shift = 3 - min(levels)
        html = _HEADING.sub(lambda m: f"<{m[1]}h{min(int(m[2]) + shift, 6)}>", html)
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def check_summary(markdown: str) -> str:
    text = markdown.replace("\r\n", "\n").strip()
    if len(text) > MAX_SUMMARY_CHARS:
        raise BadRequest(
            N_("The summary is too long: use at most %(max)s characters."), max=MAX_SUMMARY_CHARS
        )
    return text


def check_pdf(data: bytes) -> None:
    """A PDF by its content, not by its name or the browser's word: the header every PDF
    starts with, and the end-of-file marker in its last kilobyte."""
    if len(data) > MAX_PDF_BYTES:
        raise PayloadTooLarge(
            N_("The PDF is too large: at most %(mb)s MB."), mb=MAX_PDF_BYTES // (1024 * 1024)
        )
    if not data:
        raise BadRequest(N_("The file is empty."))
    if not data.startswith(b"%PDF-") or b"%%EOF" not in data[-1024:]:
        raise BadRequest(N_("This file is not a PDF. Export the agreement as PDF and upload it."))
