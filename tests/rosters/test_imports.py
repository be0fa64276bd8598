"""Roster files: encodings, delimiters, dates, mapping, row errors, preview and apply."""

from __future__ import annotations

import contextlib
import io
import re
import uuid
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ratify.errors import Conflict, RatifyError
from ratify.rosters import imports, queries
from ratify.rosters import services as rosters
from ratify.rosters.models import ImportScope, Member, RosterImport, StatusKind
from ratify.rosters.services import UnitFields
from tests.factories import make_org

EFFECTIVE = date(2026, 11, 1)
HEADER = "Member ID,First Name,Last Name,Email,Cell Phone,Hire Date,Status\n"


def _org_with_units(db: Session):  # type: ignore[no-untyped-def]
    org = make_org(db)
    rn = rosters.create_unit(db, org, actor=None, fields=UnitFields("RN", "Nurses", "", ""))
    tech = rosters.create_unit(db, org, actor=None, fields=UnitFields("TECH", "Techs", "", ""))
    return org, rn, tech


def _preview(
    db: Session,
    org,
    data: bytes,
    *,
    unit=None,
    scope=ImportScope.UNIT,
    mapping=None,
    effective=EFFECTIVE,
):  # type: ignore[no-untyped-def]
    roster = imports.read_roster("roster.csv", data)
    return imports.preview(
        db,
        org,
        roster,
        mapping=mapping or imports.guess_mapping(roster.headers),
        scope=scope,
        unit=unit,
        effective=effective,
        phone_region="US",
    )


@pytest.mark.parametrize(
    ("encoding", "delimiter"),
    [("utf-8", ","), ("utf-8-sig", ";"), ("cp1252", "\t"), ("utf-8", "|")],
)
def test_encodings_and_delimiters(encoding: str, delimiter: str) -> None:
    text = (
        f"Member ID{delimiter}Last Name{delimiter}First Name\n1001{delimiter}Muñoz{delimiter}José\n"
    )
    roster = imports.read_roster("r.csv", text.encode(encoding))
    assert roster.headers == ["Member ID", "Last Name", "First Name"]
    assert roster.rows == [["1001", "Muñoz", "José"]]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-03-05", date(2024, 3, 5)),
        ("03/05/2024", date(2024, 3, 5)),
        ("3/5/24", date(2024, 3, 5)),
        ("2024/03/05", date(2024, 3, 5)),
        ("05.03.2024", date(2024, 3, 5)),
        ("Mar 5, 2024", date(2024, 3, 5)),
        ("5 Mar 2024", date(2024, 3, 5)),
        ("20240305", date(2024, 3, 5)),
        ("45356", date(2024, 3, 5)),  # Excel serial day
        ("45356.0", date(2024, 3, 5)),
        ("yesterday", None),
        ("13/45/2024", None),
    ],
)
def test_date_formats(raw: str, expected: date | None) -> None:
    assert imports.parse_date(raw) == expected


def test_headers_are_guessed() -> None:
    mapping = imports.guess_mapping(
        ["Emp ID", "Surname", "Given Name", "E-mail", "Mobile", "DOB", "Bargaining Unit"]
    )
    assert mapping == {
        "member_number": "Emp ID",
        "last_name": "Surname",
        "first_name": "Given Name",
        "email": "E-mail",
        "phone": "Mobile",
        "birth_date": "DOB",
        "unit": "Bargaining Unit",
    }


def test_row_errors_name_row_column_and_problem(db: Session) -> None:
    org, rn, _ = _org_with_units(db)
    data = (
        HEADER
        + "1001,Ada,Lovelace,ada@example.org,415-555-0132,2020-01-05,member\n"
        + "1002,Bad,Email,not-an-email,12,someday,emperor\n"
        + ",No,Number,,,,member\n"
        + "1001,Dup,Licate,,,,member\n"
        + "1005,=cmd|' /C calc'!A0,Evil,,,,member\n"
    ).encode()
    result = _preview(db, org, data, unit=rn)
    found = {(e.row, e.column, e.message) for e in result.errors}
    assert (3, "Email", "This is not an email address.") in found
    assert (3, "Cell Phone", "This is not a phone number.") in found  # every problem at once
    assert (3, "Hire Date", "This is not a date.") in found
    assert (3, "Status", "Unknown membership status.") in found
    assert (4, "Member ID", "Every member needs a member number.") in found
    assert (5, "Member ID", "This member number is also on an earlier row.") in found
    assert (6, "First Name", "A cell may not start with a formula.") in found
    assert [r.fields.member_number for r in result.new] == ["1001"]


def test_preview_and_apply_then_reimport_shows_changes_and_leavers(db: Session) -> None:
    org, rn, _ = _org_with_units(db)
    first = (HEADER + "1001,Ada,Lovelace,ADA@example.org,(415) 555-0132,1/5/2020,Member\n"
             "1002,Grace,Hopper,,,2021-02-01,fee payer\n"
             "1003,Alan,Turing,,,,member\n").encode()  # fmt: skip
    result = _preview(db, org, first, unit=rn, effective=date(2026, 10, 1))
    assert result.counts() == {
        "rows": 3,
        "new": 3,
        "changed": 0,
        "leaving": 0,
        "unchanged": 0,
        "errors": 0,
    }
    record = imports.apply(db, org, result, actor_label="test", phone_region="US")
    assert record.counts["new"] == 3
    ada = db.scalars(select(Member).where(Member.member_number == "1001")).one()
    assert (ada.email, ada.phone, ada.hire_date) == (
        "ada@example.org",
        "+14155550132",
        date(2020, 1, 5),
    )
    grace = db.scalars(select(Member).where(Member.member_number == "1002")).one()
    assert (
        queries.status_on(db, grace, StatusKind.MEMBERSHIP, EFFECTIVE) == "fee_payer"
    )  # until now

    second = (HEADER + "1001,Ada,Lovelace,ada@example.org,415-555-0132,2020-01-05,member\n"
              "1002,Grace,Hopper-King,,,2021-02-01,member\n"
              "1004,Katherine,Johnson,,,,member\n").encode()  # fmt: skip
    result = _preview(db, org, second, unit=rn)
    assert result.counts() == {
        "rows": 3,
        "new": 1,
        "changed": 1,
        "leaving": 1,
        "unchanged": 1,
        "errors": 0,
    }
    ((_row, change),) = result.changed
    assert change.fields == {
        "last_name": ("Hopper", "Hopper-King"),
        "membership_status": ("fee_payer", "member"),
    }
    assert [m.member_number for m, _ in result.leaving] == ["1003"]
    with pytest.raises(Conflict, match="confirm that this file is complete"):
        imports.apply(db, org, result, actor_label="test", phone_region="US")  # 1 of 3 > 20%
    imports.apply(db, org, result, actor_label="test", phone_region="US", confirm_leaving=True)
    turing = db.scalars(select(Member).where(Member.member_number == "1003")).one()
    assert queries.units_on(db, turing, EFFECTIVE) == []  # left, not deleted
    assert [u.code for u in queries.units_on(db, turing, date(2026, 10, 31))] == ["RN"]
    with pytest.raises(Conflict, match="already imported"):
        imports.apply(db, org, result, actor_label="test", phone_region="US", confirm_leaving=True)


def test_update_only_never_marks_anyone_as_leaving(db: Session) -> None:
    org, rn, _ = _org_with_units(db)
    imports.apply(
        db,
        org,
        _preview(db, org, (HEADER + "1,A,B,,,,member\n2,C,D,,,,member\n").encode(), unit=rn),
        actor_label="t",
        phone_region="US",
    )
    result = _preview(
        db, org, (HEADER + "1,A,B,,,,fee payer\n").encode(), scope=ImportScope.UPDATE_ONLY
    )
    assert result.counts()["leaving"] == 0 and result.counts()["changed"] == 1


def test_units_named_in_a_column_compute_leaving_only_for_those(db: Session) -> None:
    org, _, _ = _org_with_units(db)
    data = b"Member ID,Last Name,Unit\n1,Lee,RN\n2,Kim,TECH\n3,Park,RN\n"
    imports.apply(
        db,
        org,
        _preview(db, org, data, scope=ImportScope.UNIT_COLUMN),
        actor_label="t",
        phone_region="US",
    )
    result = _preview(
        db, org, b"Member ID,Last Name,Unit\n1,Lee,RN\n", scope=ImportScope.UNIT_COLUMN
    )
    assert [m.member_number for m, unit in result.leaving] == ["3"]  # TECH is not in this file
    bad = _preview(
        db, org, b"Member ID,Last Name,Unit\n9,Doe,NOPE\n", scope=ImportScope.UNIT_COLUMN
    )
    assert [(e.row, e.message) for e in bad.errors] == [(2, "No bargaining unit has this code.")]


def test_an_error_anywhere_writes_nothing(db: Session) -> None:
    org, rn, _ = _org_with_units(db)
    data = (HEADER + "1,A,B,,,,member\n2,C,D,,,,emperor\n").encode()
    result = _preview(db, org, data, unit=rn)
    with pytest.raises(Conflict, match="1 rows have errors"):
        imports.apply(db, org, result, actor_label="t", phone_region="US")
    assert db.execute(select(func.count()).select_from(Member)).scalar_one() == 0
    assert db.execute(select(func.count()).select_from(RosterImport)).scalar_one() == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"   \n\n", "The file is empty."),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "This is not a text (CSV) file."),
        (b"Member ID,Name\n", "at least one member"),
        (",".join(f"c{n}" for n in range(10_000)).encode() + b"\n1\n", "more than 200 columns"),
    ],
)
def test_broken_files_get_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(imports.RosterFileError, match=re.escape(message)):
        imports.read_roster("bad.csv", data)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=2000) | st.text(max_size=2000).map(str.encode))
def test_hostile_files_give_an_error_or_a_preview_and_write_nothing(
    db: Session, data: bytes
) -> None:
    org = make_org(db)
    rn = rosters.create_unit(db, org, actor=None, fields=UnitFields("RN", "Nurses", "", ""))
    before = db.execute(select(func.count()).select_from(Member)).scalar_one()
    # A RatifyError is a clear 4xx; anything else (a crash) fails the test.
    with contextlib.suppress(RatifyError):
        roster = imports.read_roster("fuzz.csv", data)
        mapping = imports.guess_mapping(roster.headers)
        mapping.setdefault("member_number", roster.headers[0])
        imports.preview(
            db,
            org,
            roster,
            mapping=mapping,
            scope=ImportScope.UNIT,
            unit=rn,
            effective=EFFECTIVE,
            phone_region="US",
        )
    assert db.execute(select(func.count()).select_from(Member)).scalar_one() == before


def _xlsx(rows: list[list[object]]) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_excel_rosters_are_read_like_csv(db: Session) -> None:
    from datetime import datetime

    data = _xlsx(
        [
            ["Member ID", "Last Name", "First Name", "Hire Date", "Phone"],
            [1001, "Muñoz", "José", datetime(2019, 4, 2), "+1 415 555 0132"],  # noqa: DTZ001 (Excel has no zones)
            [1002, "Lee", "Ann", None, None],
        ]
    )
    roster = imports.read_roster("payroll.xlsx", data)
    assert roster.headers == ["Member ID", "Last Name", "First Name", "Hire Date", "Phone"]
    assert roster.rows[0] == ["1001", "Muñoz", "José", "2019-04-02", "+1 415 555 0132"]
    assert roster.rows[1][:3] == ["1002", "Lee", "Ann"]
    org, rn, _ = _org_with_units(db)
    result = imports.preview(
        db, org, roster, mapping=imports.guess_mapping(roster.headers), scope=ImportScope.UNIT,
        unit=rn, effective=EFFECTIVE, phone_region="US",
    )  # fmt: skip
    assert result.counts()["new"] == 2 and not result.errors
    assert result.new[0].fields.hire_date == date(2019, 4, 2)


def test_a_damaged_spreadsheet_is_a_clear_error() -> None:
    with pytest.raises(imports.RosterFileError, match="spreadsheet could not be read"):
        imports.read_roster("broken.xlsx", b"PK\x03\x04" + b"\x00garbage" * 50)


def test_reimport_updates_names_statuses_and_units_in_bulk(db: Session) -> None:
    org, _, _ = _org_with_units(db)
    header = b"Member ID,Last Name,First Name,Status,Unit\n"
    first = header + b"1,Lee,Ann,member,RN\n2,Kim,Bo,member,RN\n"
    day = date(2026, 10, 1)
    result = _preview(db, org, first, scope=ImportScope.UNIT_COLUMN, effective=day)
    imports.apply(db, org, result, actor_label="t", phone_region="US")
    # The same day: a correction of Ann's status (no new period); Bo transfers to TECH.
    again = header + b"1,Lee-Park,Ann,fee payer,RN\n2,Kim,Bo,member,TECH\n"
    result = _preview(db, org, again, scope=ImportScope.UNIT_COLUMN, effective=day)
    assert [(m.member_number, u.code) for m, u in result.leaving] == [("2", "RN")]
    later = date(2026, 10, 2)
    result = _preview(db, org, again, scope=ImportScope.UNIT_COLUMN, effective=later)
    imports.apply(db, org, result, actor_label="t", phone_region="US", confirm_leaving=True)
    ann = db.scalars(select(Member).where(Member.member_number == "1")).one()
    db.refresh(ann)
    assert ann.last_name == "Lee-Park" and ann.sort_name == "lee-park ann"
    statuses = [
        (r.value, r.start_date) for r in queries.member_history(db, ann) if r.what == "membership"
    ]
    assert statuses == [("fee_payer", later), ("member", day)]
    found = queries.search_members(db, org, "lee-p", phone_region="US").members
    assert [m.member_number for m in found] == ["1"]
    bo = db.scalars(select(Member).where(Member.member_number == "2")).one()
    assert [u.code for u in queries.units_on(db, bo, day)] == ["RN"]
    assert [u.code for u in queries.units_on(db, bo, later)] == ["TECH"]


def test_a_status_fixed_on_the_day_it_began_is_corrected_in_place(db: Session) -> None:
    org, rn, _ = _org_with_units(db)
    day = date(2026, 10, 1)
    header = b"Member ID,Last Name,Status\n"
    imports.apply(
        db,
        org,
        _preview(db, org, header + b"1,Lee,member\n", unit=rn, effective=day),
        actor_label="t",
        phone_region="US",
    )
    imports.apply(
        db,
        org,
        _preview(db, org, header + b"1,Lee,fee payer\n", unit=rn, effective=day),
        actor_label="t",
        phone_region="US",
    )
    lee = db.scalars(select(Member)).one()
    assert [
        (r.value, r.start_date, r.end_date)
        for r in queries.member_history(db, lee)
        if r.what == "membership"
    ] == [("fee_payer", day, None)]


def test_a_reimport_validates_only_rows_that_differ(db: Session, monkeypatch) -> None:
    org, rn, _ = _org_with_units(db)
    data = HEADER + "".join(
        f"{n},Ann{n},Lee,ann{n}@example.org,+14155550{100 + n},2020-01-05,member\n"
        for n in range(20)
    )
    imports.apply(
        db,
        org,
        _preview(db, org, data.encode(), unit=rn, effective=date(2026, 10, 1)),
        actor_label="t",
        phone_region="US",
    )
    checked: list[str] = []
    original = rosters.clean_member_fields

    def counting(fields, region, **options):  # type: ignore[no-untyped-def]
        checked.append(fields.member_number)
        return original(fields, region, **options)

    monkeypatch.setattr(rosters, "clean_member_fields", counting)
    again = (
        data.replace("5,Ann5,Lee", "5,Ann5,Lee-Park")
        + "5,Ann5,Lee,ann5@example.org,+14155550105,2020-01-05,member\n"
    )
    result = _preview(db, org, again.encode(), unit=rn)
    assert checked == ["5"]  # only the changed row; the identical repeat is only counted
    assert result.counts()["unchanged"] == 19 and result.counts()["changed"] == 1
    assert [e.message for e in result.errors] == ["This member number is also on an earlier row."]


def test_new_members_get_statuses_a_unit_and_their_import_with_fresh_ids(db: Session) -> None:
    from ratify.rosters.models import ImportTouch, MemberStatusPeriod, UnitAssignment

    org, rn, _ = _org_with_units(db)
    data = (HEADER + "1001,Ada,Lovelace,,,,fee payer\n1002,Grace,Hopper,,,,member\n").encode()
    record = imports.apply(
        db, org, _preview(db, org, data, unit=rn), actor_label="test", phone_region="US"
    )
    members = {m.member_number: m for m in db.scalars(select(Member))}
    assert members["1001"].sort_name == "lovelace ada"
    periods = db.execute(
        select(Member.member_number, MemberStatusPeriod.kind, MemberStatusPeriod.status,
               MemberStatusPeriod.start_date, MemberStatusPeriod.id)
        .join(Member, Member.id == MemberStatusPeriod.member_id)
    ).all()  # fmt: skip
    assert sorted(p[:4] for p in periods) == [
        ("1001", StatusKind.EMPLOYMENT, "active", EFFECTIVE),
        ("1001", StatusKind.MEMBERSHIP, "fee_payer", EFFECTIVE),
        ("1002", StatusKind.EMPLOYMENT, "active", EFFECTIVE),
        ("1002", StatusKind.MEMBERSHIP, "member", EFFECTIVE),
    ]
    assignments = db.execute(select(UnitAssignment.member_id, UnitAssignment.unit_id)).all()
    assert sorted(assignments) == sorted((m.id, rn.id) for m in members.values())
    # The import that added them is on each member (no history row per new member).
    assert {m.added_by_import_id for m in members.values()} == {record.id}
    assert db.execute(select(func.count()).select_from(ImportTouch)).scalar_one() == 0
    # Keys made for bulk inserts (``ascending_uuids``) read back as distinct version-4 UUIDs
    # on both engines.
    made = [p.id for p in periods] + [a.id for a in db.scalars(select(UnitAssignment))]
    made += [m.id for m in members.values()]
    assert len(set(made)) == len(made)
    assert {i.version for i in made} == {4}
    assert {i.variant for i in made} == {uuid.RFC_4122}


def test_an_update_without_names_changes_known_members_and_refuses_new_ones(
    db: Session,
) -> None:
    """A membership system that sends only numbers and emails: known members keep their
    names and take the new email; someone unknown cannot be added without a name."""
    org, rn, _ = _org_with_units(db)
    first = (HEADER + "1001,Ada,Lovelace,ada@example.org,,,member\n").encode()
    imports.apply(db, org, _preview(db, org, first, unit=rn), actor_label="t", phone_region="US")
    update = b"Member ID,Email\n1001,ada.lovelace@example.org\n1009,new@example.org\n"
    result = _preview(db, org, update, scope=ImportScope.UPDATE_ONLY)
    assert [(e.row, e.column, e.message) for e in result.errors] == [
        (3, "last_name", "Every member needs a name.")
    ]
    ((_, change),) = result.changed
    assert change.fields == {"email": ("ada@example.org", "ada.lovelace@example.org")}
    ok = _preview(db, org, update[: update.index(b"1009")], scope=ImportScope.UPDATE_ONLY)
    imports.apply(db, org, ok, actor_label="t", phone_region="US")
    ada = db.scalars(select(Member).where(Member.member_number == "1001")).one()
    assert (ada.first_name, ada.last_name, ada.email) == (
        "Ada",
        "Lovelace",
        "ada.lovelace@example.org",
    )


def test_an_unknown_unit_code_is_an_error_even_on_an_unchanged_row(db: Session) -> None:
    org, rn, _ = _org_with_units(db)
    header = "Member ID,First Name,Last Name,Unit\n"
    first = (header + "1001,Ada,Lovelace,RN\n").encode()
    imports.apply(db, org, _preview(db, org, first, unit=rn), actor_label="t", phone_region="US")
    again = (header + "1001,Ada,Lovelace,XX\n").encode()
    result = _preview(db, org, again, unit=rn)
    assert [(e.row, e.message) for e in result.errors] == [(2, "No bargaining unit has this code.")]


def test_a_bulk_import_refreshes_the_planners_statistics(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without statistics the planners chose plans quadratic in the roster's size (SQLite
    scanned a unit's every assignment for each member: 78 s for 20,000 members)."""
    from sqlalchemy import text

    monkeypatch.setattr(imports, "ANALYZE_AFTER", 2)
    org, rn, _ = _org_with_units(db)
    data = (HEADER + "1001,Ada,Lovelace,,,,member\n1002,Grace,Hopper,,,,member\n").encode()
    imports.apply(db, org, _preview(db, org, data, unit=rn), actor_label="t", phone_region="US")
    if db.get_bind().dialect.name == "sqlite":
        analyzed = db.execute(text("SELECT DISTINCT tbl FROM sqlite_stat1")).scalars().all()
    else:
        analyzed = (
            db.execute(text("SELECT relname FROM pg_class WHERE reltuples > 0 AND relkind = 'r'"))
            .scalars()
            .all()
        )
    assert {"members", "member_status_periods", "unit_assignments"} <= set(analyzed)


def test_a_separator_in_a_cell_cannot_hide_a_change(db: Session) -> None:
    """Fingerprints join values with \\x1f: stored ("A\\x1fB", "C") and a row ("A",
    "B\\x1fC") would agree. A row holding the separator is always checked in full."""
    org, rn, _ = _org_with_units(db)
    header = "Member ID,First Name,Last Name\n"
    first = (header + "1001,A\x1fB,C\n").encode()
    imports.apply(db, org, _preview(db, org, first, unit=rn), actor_label="t", phone_region="US")
    result = _preview(db, org, (header + "1001,A,B\x1fC\n").encode(), unit=rn)
    assert result.counts()["changed"] == 1 and result.counts()["unchanged"] == 0


# Rows of a file checked in slices, or by forked processes, come out as from one pass.
SLICED = (
    HEADER
    + "1001,Ada,Lovelace,ada@example.org,,,member\n"
    + "1002,Grace,Hopper,not-an-email,,,member\n"
    + "1003,Katherine,Johnson,,,,retired-ish\n"
    + "1001,Ada,Again,,,,member\n"  # the first slice's number, in the second slice
    + "1004,Dorothy,Vaughan,,,,member\n"
    + "1004,Dorothy,Twice,,,,member\n"  # repeated within the second slice
    + ",No,Number,,,,member\n"
    + "1003,Kay,Again,,,,retired-ish\n"  # repeated, with a problem of its own
    + "1005,Mary,Jackson,,+1 312 555 0100,2020-01-31,member\n"
).encode()


def _checked(data: bytes, **kwargs):  # type: ignore[no-untyped-def]
    roster = imports.read_roster("roster.csv", data)
    mapping = imports.guess_mapping(roster.headers)
    return imports.check_rows(roster, mapping, phone_region="US", unit_codes=set(), **kwargs)


def test_rows_checked_in_slices_find_what_one_pass_finds(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    whole = _checked(SLICED)
    good, errors, _ = whole
    assert [row.fields.member_number for row in good] == ["1001", "1004", "1005"]
    repeated = [e.row for e in errors if e.message == imports.DUPLICATE]
    assert repeated == [5, 7, 9]  # each later row of 1001, 1004 and 1003, named once
    assert [e.column for e in errors if e.row == 9] == ["Status", "Member ID"]
    monkeypatch.setattr(imports, "PROGRESS_EVERY", 3)
    assert _checked(SLICED) == whole
    monkeypatch.setattr(imports, "PROGRESS_EVERY", 1)
    assert _checked(SLICED) == whole


def test_forked_processes_check_a_large_file_as_one_process_does(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(imports, "PROGRESS_EVERY", 2)
    monkeypatch.setattr(imports, "PARALLEL_FROM", 1)
    forked: list[bool] = []
    in_parallel = imports._check_in_parallel

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        forked.append(True)
        return in_parallel(*args, **kwargs)

    monkeypatch.setattr(imports, "_check_in_parallel", spy)
    done: list[int] = []
    assert _checked(SLICED, processes=2, progress=done.append) == _checked(SLICED)
    assert forked == [True]
    assert done == [2, 4, 6, 8]  # as one process reports them, every PROGRESS_EVERY rows
    assert imports._forked_checker is None  # nothing of the file is kept once checked


@settings(max_examples=60, deadline=None)
@given(
    numbers=st.lists(st.sampled_from(["", "7", "8", "9", "10"]), min_size=1, max_size=12),
    size=st.integers(min_value=1, max_value=5),
)
def test_slices_join_like_one_pass_whatever_the_repeats(numbers: list[str], size: int) -> None:
    data = (HEADER + "".join(f"{n},A,B,,,,member\n" for n in numbers)).encode()
    whole = _checked(data)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(imports, "PROGRESS_EVERY", size)
        assert _checked(data) == whole


def test_rows_the_same_as_stored_and_changed_rows_join_in_file_order(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A weekly file's unchanged rows are counted where the file is read and only the others
    are checked (by forked processes for a large file): repeats across the two kinds of row
    are found as in one pass."""
    org, rn, _ = _org_with_units(db)
    first = (HEADER + "".join(f"{n},A{n},B{n},,,,member\n" for n in range(1001, 1005))).encode()
    imports.apply(db, org, _preview(db, org, first, unit=rn), actor_label="t", phone_region="US")
    weekly = (
        HEADER
        + "1001,A1001,B1001,,,,member\n"  # as stored
        + "1002,Changed,B1002,,,,member\n"
        + "1001,A1001,B1001,,,,member\n"  # as stored, again: an error
        + "1005,New,Member,,,,member\n"
        + "1002,A1002,B1002,,,,member\n"  # as stored, after its changed row: an error
        + "1003,A1003,B1003,,,,member\n"
        + "1005,New,Again,,,,member\n"  # new, again: an error
    ).encode()

    def outcome():  # type: ignore[no-untyped-def]
        result = _preview(db, org, weekly, unit=rn)
        return (
            result.counts(),
            [(e.row, e.column, e.message) for e in result.errors],
            [row.fields.member_number for row in result.rows],
        )

    whole = outcome()
    assert whole[0] | {"rows": 0} == {
        "rows": 0, "new": 1, "changed": 1, "leaving": 1, "unchanged": 2, "errors": 3
    }  # fmt: skip
    assert [row for row, _, _ in whole[1]] == [4, 6, 8]
    monkeypatch.setattr(imports, "PROGRESS_EVERY", 2)
    assert outcome() == whole
    monkeypatch.setattr(imports, "PARALLEL_FROM", 1)
    roster = imports.read_roster("weekly.csv", weekly)
    forked = imports.preview(
        db, org, roster, mapping=imports.guess_mapping(roster.headers), scope=ImportScope.UNIT,
        unit=rn, effective=EFFECTIVE, phone_region="US", processes=2,
    )  # fmt: skip
    assert (
        forked.counts(),
        [(e.row, e.column, e.message) for e in forked.errors],
        [row.fields.member_number for row in forked.rows],
    ) == whole
