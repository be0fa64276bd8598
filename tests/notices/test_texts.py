"""Notice texts: placeholders, and the HTML part escaping whatever a roster holds."""

from __future__ import annotations

from ratify.notices import texts


def test_unknown_placeholders_and_stray_braces_are_named() -> None:
    assert texts.unknown_placeholders("Hi {name}, {link}") == []
    assert texts.unknown_placeholders("Hi {nmae} {{ config }}") == [
        "{nmae}",
        "{ config }",
        "{",
        "}",
    ]
    assert texts.unknown_placeholders("a } b") == ["}"]


def test_the_html_part_escapes_values_and_links_the_link() -> None:
    values = {
        "name": '<script>alert("x")</script> & Co',
        "link": "https://vote.example.org/v/abcd?x=1&y=2",
        "vote": "Contract",
    }
    made = texts.fill_html("Hello {name},\n\nVote on {vote}:\n{link}\n", values)
    assert "<script>" not in made
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in made
    assert '<a href="https://vote.example.org/v/abcd?x=1&amp;y=2">' in made
    assert made.count("<p>") == 2 and "<br>" in made
    # The same as escaping the filled text, the way it was first written.
    assert made == texts.to_html(
        texts.fill("Hello {name},\n\nVote on {vote}:\n{link}\n", values), values["link"]
    )
