"""Pages as PDF documents (certificates, later letters) with WeasyPrint, from the same
templates as the pages. WeasyPrint fetches nothing from the network: only the app's own
static files (``/static/...``) are read, from disk; any other address is refused."""

from __future__ import annotations

from typing import Any

from ratify.errors import N_, RatifyError
from ratify.settings import PROJECT_ROOT

STATIC_DIR = (PROJECT_ROOT / "static").resolve()


class PdfUnavailable(RatifyError):
    status_code = 503
    default_message = N_(
        "PDF files cannot be made on this server (WeasyPrint's libraries are missing). "
        "Print the page instead, or tell whoever runs Ratify."
    )


def _static_file(url: str) -> tuple[bytes, str]:
    """The bytes and type of one of the app's static files named by a ``file:///static/``
    address; ValueError for any other address (another host, a path out of the folder)."""
    prefix = "file:///static/"
    if not url.startswith(prefix):
        raise ValueError("a PDF reads only the app's static files")
    path = (STATIC_DIR / url[len(prefix) :].split("?")[0]).resolve()
    if STATIC_DIR not in path.parents or not path.is_file():
        raise ValueError("no such static file")
    return path.read_bytes(), "text/css" if path.suffix == ".css" else "application/octet-stream"


def html_to_pdf(html: str) -> bytes:
    try:
        from weasyprint import HTML  # type: ignore[import-untyped]
        from weasyprint.urls import URLFetcher, URLFetcherResponse  # type: ignore[import-untyped]
    except OSError as exc:  # pango and friends are not installed
        raise PdfUnavailable() from exc

    class StaticOnly(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: Any = None) -> Any:
            body, mime = _static_file(url)
            return URLFetcherResponse(url, body, {"Content-Type": mime})

    # Root-relative addresses (/static/ratify.css) resolve against file:///.
    document = HTML(string=html, base_url="file:///", url_fetcher=StaticOnly())
    return bytes(document.write_pdf())
