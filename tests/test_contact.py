"""Contact normalization: the cached fast path for email agrees with email-validator."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ratify.contact import _validated, normalize_email, normalize_phone

LOCAL = st.text(alphabet="aZ09._-+!#'=~ü\"@ ", min_size=0, max_size=12)
DOMAIN = st.sampled_from(
    ["example.org", "Members.Example", "a.test", "localhost", "-a.org", "a..org", "bücher.ch",
     "xn--bcher-kva.ch", "1.2.3.4", "a.b", "example.invalid", "", "x.org."]
)  # fmt: skip


@given(local=LOCAL, domain=DOMAIN)
def test_fast_path_gives_the_same_answer_as_email_validator(local: str, domain: str) -> None:
    address = f"{local}@{domain}"
    assert normalize_email(address) == _validated(address.strip())


def test_addresses_are_lower_cased_and_bad_ones_refused() -> None:
    assert normalize_email("  Ana.Ruiz@Members.Example ") == "ana.ruiz@members.example"
    assert normalize_email("ana..ruiz@example.org") is None
    assert normalize_email("ana@localhost") is None
    assert normalize_email("ana@example.invalid") is None
    long_local = "x" * 65 + "@example.org"  # past the fast path's limit: the library decides
    assert normalize_email(long_local) == _validated(long_local)


def test_phones_become_e164_in_the_default_region() -> None:
    assert normalize_phone("(312) 555-0132", "US") == "+13125550132"
    assert normalize_phone("+44 20 7946 0958", "US") == "+442079460958"
    assert normalize_phone("12", "US") is None


SEPARATOR = st.sampled_from(["", " ", "-", ".", "  ", "/", "–"])
NANP_SHAPES = st.builds(
    lambda plus, open_, area, close, s1, exchange, s2, line: (
        f"{plus}{open_}{area}{close}{s1}{exchange}{s2}{line}"
    ),
    st.sampled_from(["", "+1", "+1 ", "+1-", "1", "1 ", "+", "+2", "001 "]),
    st.sampled_from(["", "("]),
    st.text(alphabet="0123456789", min_size=3, max_size=3),
    st.sampled_from(["", ")"]),
    SEPARATOR,
    st.text(alphabet="0123456789", min_size=3, max_size=3),
    SEPARATOR,
    st.text(alphabet="0123456789", min_size=3, max_size=5),
)


@given(raw=NANP_SHAPES, region=st.sampled_from(["US", "CA", "GB", "FR", "MX", "JM"]))
def test_the_north_american_fast_path_agrees_with_phonenumbers(raw: str, region: str) -> None:
    from ratify.contact import _parsed_phone

    assert normalize_phone(raw, region) == _parsed_phone(raw.strip(), region)


@given(raw=st.text(alphabet="+()0123456789 .-x", max_size=18), region=st.sampled_from(["US", "GB"]))
def test_any_phone_like_text_gets_the_libraries_answer(raw: str, region: str) -> None:
    from ratify.contact import _parsed_phone

    assert normalize_phone(raw, region) == _parsed_phone(raw.strip(), region)
