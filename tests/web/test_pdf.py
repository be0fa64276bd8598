"""Pages as PDF: WeasyPrint reads the app's static files and nothing else."""

from __future__ import annotations

import pypdfium2
import pytest

from ratify.web import pdf


def test_a_page_becomes_a_pdf_whose_text_reads_back() -> None:
    made = pdf.html_to_pdf(
        '<link rel="stylesheet" href="/static/ratify.css"><h1>Certificate</h1><p>Yes: 1,234</p>'
    )
    assert made.startswith(b"%PDF-")
    text = pypdfium2.PdfDocument(made)[0].get_textpage().get_text_range()
    assert "Certificate" in text and "Yes: 1,234" in text


def test_only_the_apps_static_files_are_read() -> None:
    css, mime = pdf._static_file("file:///static/ratify.css")
    assert mime == "text/css" and b"{" in css
    for url in (
        "http://example.com/x.css",
        "file:///etc/passwd",
        "file:///static/../pyproject.toml",
        "file:///static/%2e%2e/pyproject.toml",
        "file:///static/missing.css",
    ):
        with pytest.raises(ValueError, match="static file"):
            pdf._static_file(url)
