"""Roster files: read (any common encoding, delimiter and date format), map columns, check
every row, preview what would change, and apply it all or nothing.

No HTTP here: the CLI (and later the pages and the API) call ``read_roster``, ``preview`` and
``apply``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import multiprocessing
import re
import sys
import uuid
from collections import deque
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from itertools import islice
from multiprocessing.pool import AsyncResult
from operator import attrgetter, itemgetter
from typing import Any

from python_calamine import CalamineWorkbook
from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    cast,
    delete,
    distinct,
    func,
    literal,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session, aliased, defer

from ratify.accounts.models import StaffUser
from ratify.audit import services as audit
from ratify.db import analyze, ascending_uuids, bulk_insert, copy_rows, utcnow
from ratify.errors import N_, BadRequest, Conflict, NotFound
from ratify.jobs import services as jobs
from ratify.jobs.models import Job, JobStatus
from ratify.orgs.models import Organization
from ratify.rosters import queries
from ratify.rosters import services as rosters
from ratify.rosters.models import (
    BargainingUnit,
    ColumnMapping,
    EmploymentStatus,
    ImportScope,
    ImportTouch,
    Member,
    MembershipStatus,
    MemberStatusPeriod,
    RosterImport,
    RosterUpload,
    StatusKind,
    UnitAssignment,
    UploadState,
)
from ratify.rosters.services import MemberFields

MAX_COLUMNS = 200
MAX_CELL = 1000

# Header words people use for each field, compared after lower-casing and dropping punctuation.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "member_number": ("member number", "member no", "member id", "member", "employee id",
                      "employee number", "emp id", "id", "badge", "payroll id"),
    "first_name": ("first name", "first", "given name", "fname", "forename"),
    "last_name": ("last name", "last", "surname", "family name", "lname"),
    "email": ("email", "e mail", "email address", "mail"),
    "phone": ("phone", "mobile", "cell", "telephone", "phone number", "cell phone", "mobile phone"),
    "preferred_language": ("language", "preferred language", "lang"),
    "address_line1": ("address", "address 1", "address line 1", "street", "street address"),
    "address_line2": ("address 2", "address line 2", "apt", "unit number", "suite"),
    "city": ("city", "town"),
    "region": ("state", "province", "region"),
    "postal_code": ("zip", "zip code", "postal code", "postcode"),
    "country": ("country",),
    "worksite": ("worksite", "work site", "site", "location", "department", "dept"),
    "classification": ("classification", "job title", "title", "job class", "position"),
    "hire_date": ("hire date", "date of hire", "doh", "hired"),
    "join_date": ("join date", "date joined", "membership date", "joined"),
    "birth_date": ("birth date", "date of birth", "dob", "birthday"),
    "unit": ("unit", "bargaining unit", "bu", "unit code"),
    "membership_status": ("membership status", "member status", "status", "membership"),
    "employment_status": ("employment status", "emp status", "job status", "employment"),
}  # fmt: skip
DATE_FIELDS = ("hire_date", "join_date", "birth_date")
MEMBERSHIP_WORDS = {
    "member": MembershipStatus.MEMBER, "full member": MembershipStatus.MEMBER,
    "m": MembershipStatus.MEMBER, "active member": MembershipStatus.MEMBER,
    "fee payer": MembershipStatus.FEE_PAYER, "agency fee": MembershipStatus.FEE_PAYER,
    "fp": MembershipStatus.FEE_PAYER, "fee": MembershipStatus.FEE_PAYER,
    "non member": MembershipStatus.NON_MEMBER, "nonmember": MembershipStatus.NON_MEMBER,
    "nm": MembershipStatus.NON_MEMBER,
}  # fmt: skip
EMPLOYMENT_WORDS = {
    "active": EmploymentStatus.ACTIVE, "a": EmploymentStatus.ACTIVE,
    "on leave": EmploymentStatus.ON_LEAVE, "leave": EmploymentStatus.ON_LEAVE,
    "loa": EmploymentStatus.ON_LEAVE, "laid off": EmploymentStatus.LAID_OFF,
    "layoff": EmploymentStatus.LAID_OFF, "terminated": EmploymentStatus.TERMINATED,
    "term": EmploymentStatus.TERMINATED, "t": EmploymentStatus.TERMINATED,
}  # fmt: skip
DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%m/%d/%y", "%Y/%m/%d", "%d.%m.%Y", "%b %d, %Y",
                "%d %b %Y", "%B %d, %Y", "%Y%m%d", "%m-%d-%Y")  # fmt: skip
EXCEL_EPOCH = date(1899, 12, 30)


def words(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


class RosterFileError(BadRequest):
    """The file as a whole cannot be read."""


@dataclass(frozen=True)
class RosterFile:
    """A readable roster. Its rows are read again from the file's bytes on each pass
    (``iter_rows``), so a 300,000-row file is never held in memory twice."""

    file_name: str
    digest: str
    headers: list[str]
    row_count: int  # data rows, without the header and blank rows
    data: bytes = field(repr=False)
    encoding: str | None  # None: a spreadsheet
    dialect: Any = None  # the sniffed CSV dialect

    def iter_rows(self) -> Iterator[list[str]]:
        """The data rows, each a list of cell texts, without the header and blank rows."""
        rows = _table(self.data, self.encoding, self.dialect)
        next(rows, None)  # the header
        return rows

    @property
    def rows(self) -> list[list[str]]:
        """All data rows at once: for small files and tests; large ones use ``iter_rows``."""
        return list(self.iter_rows())


def _encoding(data: bytes) -> str:
    """UTF-8 (with or without BOM), else Windows-1252, the usual two for payroll exports."""
    if b"\x00" in data[:4096]:
        raise RosterFileError(N_("This is not a text (CSV) file."))
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8-sig"


SPREADSHEET_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")  # .xlsx/.ods (zip), old .xls


def read_roster(file_name: str, data: bytes) -> RosterFile:
    """Parse a roster: a spreadsheet (.xlsx, .xls, .ods: its first sheet), or CSV with the
    delimiter sniffed among , ; tab and |. The whole file is read once here, so a broken one
    is refused now, not halfway through an import."""
    if not data.strip():
        raise RosterFileError(N_("The file is empty."))
    encoding, dialect = _format(data)
    rows = _table(data, encoding, dialect)
    headers = [h.strip() for h in next(rows, [])]
    if len(headers) > MAX_COLUMNS:
        raise RosterFileError(N_("The file has more than %(max)s columns."), max=MAX_COLUMNS)
    row_count = sum(1 for _ in rows)
    if not row_count:
        raise RosterFileError(N_("The file needs a header row and at least one member."))
    return RosterFile(
        file_name, hashlib.sha256(data).hexdigest(), headers, row_count, data, encoding, dialect
    )


def _format(data: bytes) -> tuple[str | None, Any]:
    """(text encoding, CSV dialect), or (None, None) for a spreadsheet."""
    if data.startswith(SPREADSHEET_MAGIC):
        return None, None
    encoding = _encoding(data)
    try:
        return encoding, csv.Sniffer().sniff(
            data[:8192].decode(encoding, errors="ignore"), delimiters=",;\t|"
        )
    except csv.Error:
        return encoding, csv.excel


def headers_of(upload: RosterUpload) -> list[str]:
    """An upload's header row, without reading the rest of a 300,000-row file again."""
    return [h.strip() for h in next(_table(upload.data, *_format(upload.data)), [])]


def roster_from_table(
    file_name: str, headers: list[str], rows: list[list[str]], *, digest: str
) -> RosterFile:
    """Rows given as data (an API batch, say) as a roster file, so they pass exactly the
    checks a file does: written as CSV in Excel's dialect and read back in that dialect (no
    sniffing, which quotes and semicolons in the values could mislead)."""
    if len(headers) > MAX_COLUMNS:
        raise RosterFileError(N_("The file has more than %(max)s columns."), max=MAX_COLUMNS)
    out = io.StringIO()
    writer = csv.writer(out, dialect=csv.excel)
    writer.writerow(headers)
    writer.writerows(rows)
    data = out.getvalue().encode()
    roster = RosterFile(file_name, digest, list(headers), 0, data, "utf-8-sig", csv.excel)
    return replace(roster, row_count=sum(1 for _ in roster.iter_rows()))


def _table(data: bytes, encoding: str | None, dialect: Any) -> Iterator[list[str]]:
    """Every non-blank row of the file, the header first, decoded as it is read."""
    if encoding is None:
        yield from _spreadsheet_rows(data)
        return
    text = io.TextIOWrapper(io.BytesIO(data), encoding=encoding, errors="replace", newline="")
    try:
        for row in csv.reader(text, dialect):
            if any(c.strip() for c in row):
                yield row
    except csv.Error as exc:
        raise RosterFileError(
            N_("The file could not be read as CSV: %(problem)s"), problem=str(exc)
        ) from None


def _spreadsheet_rows(data: bytes) -> Iterator[list[str]]:
    """The first sheet's rows as text: whole numbers without ".0", dates as YYYY-MM-DD."""
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        rows = workbook.get_sheet_by_index(0).iter_rows()
        for row in rows:
            cells = [_cell_text(value) for value in row]
            if any(cells):
                yield cells
    except RosterFileError:
        raise
    except Exception:  # calamine raises several kinds for damaged or protected files
        raise RosterFileError(N_("This spreadsheet could not be read.")) from None


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def guess_mapping(
    headers: list[str], table: Mapping[str, tuple[str, ...]] = SYNONYMS
) -> dict[str, str]:
    """Field name -> header, from the words in each header (the first match wins)."""
    mapping: dict[str, str] = {}
    normalized = {h: words(h) for h in headers}
    for fieldname, synonyms in table.items():
        for header, norm in normalized.items():
            if norm in synonyms and header not in mapping.values():
                mapping[fieldname] = header
                break
    return mapping


def looks_like_formula(raw: str) -> bool:
    """What a spreadsheet would run (=cmd|..., @SUM(...), +A1): refused, never stored. A phone
    number or a negative amount (+1 415 555 0132, -12.50) is not one."""
    if raw[:1] in ("=", "@"):
        return True
    return raw[:1] in ("+", "-") and not re.fullmatch(r"[+-][\d\s().-]*", raw)


def parse_date(raw: str) -> date | None:
    """A date in any common format, or an Excel serial day number; None if none fits."""
    raw = raw.strip()
    if len(raw) == 10 and raw[4] == "-" and raw[7] == "-":  # ISO, the usual: no format loop
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    if re.fullmatch(r"\d{5}(\.\d+)?", raw):  # Excel serial (1937-2173)
        days = int(float(raw))
        if 13_000 <= days <= 100_000:
            return EXCEL_EPOCH + timedelta(days=days)
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(raw, fmt).date()  # noqa: DTZ007 (a date, no zone)
        except ValueError:
            continue
    return None


@dataclass(frozen=True, slots=True)
class RowError:
    row: int  # as a spreadsheet numbers it: the header is row 1
    column: str
    message: str


@dataclass(frozen=True, slots=True)
class RosterRow:
    row: int
    fields: MemberFields
    membership: MembershipStatus | None
    employment: EmploymentStatus | None
    unit_code: str | None


def check_mapping(roster: RosterFile, mapping: Mapping[str, str]) -> None:
    if "member_number" not in mapping:
        raise RosterFileError(N_("Map a column to the member number: every row needs one."))
    unknown = set(mapping.values()) - set(roster.headers)
    if unknown:
        raise RosterFileError(
            N_("The mapping names columns the file does not have: %(columns)s"),
            columns=", ".join(sorted(unknown)),
        )


def check_rows(
    roster: RosterFile,
    mapping: Mapping[str, str],
    *,
    phone_region: str,
    unit_codes: set[str],
    same_as_stored: Callable[[list[str]], bool] | None = None,
    progress: Callable[[int], None] | None = None,
    known: Container[str] = (),
    processes: int = 1,
) -> tuple[list[RosterRow], list[RowError], list[tuple[str, str | None]]]:
    """Every row checked; errors name row, column and problem. A row whose text is exactly
    what is stored already (``same_as_stored``) is only counted: (number, unit code) in the
    third list. Stored values were checked on the way in, so a weekly re-import validates
    only what changed. ``progress`` hears how many rows are done, every few thousand. A
    file without name columns may update ``known`` members (their names stay); a new member
    needs a name. With ``processes`` above 1, a large file's rows are checked by that many
    forked processes, a few thousand rows at a time (see ``_check_in_parallel``)."""
    check_mapping(roster, mapping)
    checker = _RowChecker(roster.headers, mapping, phone_region, unit_codes, same_as_stored, known)
    if processes > 1 and roster.row_count >= PARALLEL_FROM and _can_fork():
        return _check_in_parallel(roster, checker, processes, progress)
    joined = _Joined(mapping["member_number"])
    for offset, rows in _slices(roster.iter_rows(), PROGRESS_EVERY):
        if progress is not None and offset:
            progress(offset)
        same, rest = checker.split_same(offset, rows)
        joined.add(same, checker(rest))
    return joined.result()


PROGRESS_EVERY = 5000
PARALLEL_FROM = 20_000  # rows: below this, starting processes costs more than it saves


@dataclass(slots=True)
class _Checked:
    """What checking a slice of rows found: ``seen`` holds (row, member number) of every row
    whose number was read, in order, and ``same_rows`` the row of each entry of ``same``, so
    that slices checked apart can be joined as if checked in one pass (``_Joined``)."""

    good: list[RosterRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    same: list[tuple[str, str | None]] = field(default_factory=list)
    same_rows: list[int] = field(default_factory=list)
    seen: list[tuple[int, str]] = field(default_factory=list)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Sent back from a checking process as plain tuples: pickling 5,000 dataclasses
        field by field costs more than checking them."""
        good = [
            (row.row, _FIELDS_OF(row.fields), row.membership, row.employment, row.unit_code)
            for row in self.good
        ]
        return _unpack_checked, (good, self.errors, self.same, self.same_rows, self.seen)


_FIELDS_OF = attrgetter(*MemberFields.__dataclass_fields__)


def _unpack_checked(
    good: list[tuple[Any, ...]],
    errors: list[RowError],
    same: list[tuple[str, str | None]],
    same_rows: list[int],
    seen: list[tuple[int, str]],
) -> _Checked:
    return _Checked(
        [RosterRow(row, MemberFields(*values), *rest) for row, values, *rest in good],
        errors,
        same,
        same_rows,
        seen,
    )


class _Joined:
    """Slices joined in file order. A member number also on an earlier slice's row makes the
    later row an error, exactly as within one slice."""

    def __init__(self, column: str) -> None:
        self.column = column  # the member number's column, named in the errors
        self.good: list[RosterRow] = []
        self.errors: list[RowError] = []
        self.same: list[tuple[str, str | None]] = []
        self.numbers: set[str] = set()

    def add(self, *parts: _Checked) -> None:
        """The parts of the next slice of rows (its rows the same as stored, and the rest),
        taken in row order."""
        seen = sorted(entry for part in parts for entry in part.seen)
        flagged = {
            error.row for part in parts for error in part.errors if error.message == DUPLICATE
        }
        repeated: set[int] = set()
        for row, number in seen:
            if number in self.numbers:
                repeated.add(row)
            else:
                self.numbers.add(number)
        errors = [error for part in parts for error in part.errors]
        if repeated:
            errors += [RowError(row, self.column, DUPLICATE) for row in repeated - flagged]
        if len(parts) > 1 or repeated:
            errors.sort(key=lambda error: error.row)  # stable: a row's own problems come first
        self.errors += errors
        for part in parts:
            self.good += [row for row in part.good if row.row not in repeated]
            self.same += [
                same for same, row in zip(part.same, part.same_rows, strict=True)
                if row not in repeated
            ]  # fmt: skip

    def result(self) -> tuple[list[RosterRow], list[RowError], list[tuple[str, str | None]]]:
        return self.good, self.errors, self.same


DUPLICATE = N_("This member number is also on an earlier row.")


def _slices(rows: Iterator[list[str]], size: int) -> Iterator[tuple[int, list[list[str]]]]:
    """(offset of the first row, rows), ``size`` rows at a time."""
    offset = 0
    while chunk := list(islice(rows, size)):
        yield offset, chunk
        offset += len(chunk)


class _RowChecker:
    """Checks a slice of a file's rows (given with the offset of its first row)."""

    def __init__(
        self,
        headers: list[str],
        mapping: Mapping[str, str],
        phone_region: str,
        unit_codes: set[str],
        same_as_stored: Callable[[list[str]], bool] | None,
        known: Container[str],
    ) -> None:
        self.mapping = mapping
        self.index = {name: headers.index(header) for name, header in mapping.items()}
        self.mapped_at = [
            (name, self.index[name])
            for name in MemberFields.__dataclass_fields__
            if name in self.index
        ]
        self.names_given = "first_name" in self.index or "last_name" in self.index
        self.phone_region = phone_region
        self.unit_codes = unit_codes
        self.same_as_stored = same_as_stored
        self.known = known
        # Status words as written (a few distinct ones in a whole file), understood once each.
        self.membership_of: dict[str, MembershipStatus | None] = {}
        self.employment_of: dict[str, EmploymentStatus | None] = {}

    def split_same(
        self, first: int, rows: list[list[str]]
    ) -> tuple[_Checked, list[tuple[int, list[str]]]]:
        """The rows (the first at offset ``first``) whose text is what is stored, only
        counted; and the others, with their row numbers, to be checked in full. Cheap, so
        done where the file is read: a weekly file sends only its changed rows on."""
        out = _Checked()
        rest: list[tuple[int, list[str]]] = []
        same_as_stored = self.same_as_stored
        at = self.index["member_number"]
        unit_at = self.index.get("unit")
        for number, cells in enumerate(rows, first + 2):
            if same_as_stored is None or not same_as_stored(cells):
                rest.append((number, cells))
                continue
            member_number = sys.intern(cells[at].strip())
            out.same.append(
                (member_number, cells[unit_at].strip().upper() if unit_at is not None else None)
            )
            out.same_rows.append(number)
            out.seen.append((number, member_number))
        return out, rest

    def __call__(self, rows: list[tuple[int, list[str]]]) -> _Checked:
        """Every check of each (row number, cells)."""
        mapping, index, mapped_at = self.mapping, self.index, self.mapped_at
        membership_of, employment_of = self.membership_of, self.employment_of
        unit_codes = self.unit_codes
        out = _Checked()
        good, errors = out.good, out.errors
        seen: dict[str, int] = {}
        for number, cells in rows:

            def cell(name: str, cells: list[str] = cells) -> str:
                i = index.get(name)
                return cells[i].strip() if i is not None and i < len(cells) else ""

            problems: list[RowError] = []
            values: dict[str, Any] = {}
            width = len(cells)
            for name, i in mapped_at:
                raw = cells[i].strip() if i < width else ""
                if not raw:
                    continue
                if len(raw) > MAX_CELL:
                    problems.append(RowError(number, mapping[name], N_("This is too long.")))
                elif looks_like_formula(raw):
                    problems.append(
                        RowError(number, mapping[name], N_("A cell may not start with a formula."))
                    )
                elif name in DATE_FIELDS:
                    values[name] = parse_date(raw)
                    if values[name] is None:
                        problems.append(RowError(number, mapping[name], N_("This is not a date.")))
                else:
                    values[name] = raw
            membership = employment = None
            if "membership_status" in mapping:
                raw = cell("membership_status")
                if raw not in membership_of:
                    membership_of[raw] = MEMBERSHIP_WORDS.get(words(raw))
                membership = membership_of[raw]
                if membership is None:
                    problems.append(
                        RowError(
                            number, mapping["membership_status"], N_("Unknown membership status.")
                        )
                    )
            if "employment_status" in mapping:
                raw = cell("employment_status")
                if raw not in employment_of:
                    employment_of[raw] = EMPLOYMENT_WORDS.get(words(raw))
                employment = employment_of[raw]
                if employment is None:
                    problems.append(
                        RowError(
                            number, mapping["employment_status"], N_("Unknown employment status.")
                        )
                    )
            unit_code = None
            if "unit" in mapping:
                unit_code = cell("unit").upper()
                if unit_code not in unit_codes:
                    problems.append(
                        RowError(number, mapping["unit"], N_("No bargaining unit has this code."))
                    )
            try:
                cleaned = rosters.clean_member_fields(
                    MemberFields(values.pop("member_number", ""), values.pop("first_name", ""),
                                 values.pop("last_name", ""), **values),
                    self.phone_region,
                    require_name=self.names_given or cell("member_number") not in self.known,
                )  # fmt: skip
            except rosters.MemberInvalid as exc:
                problems += [
                    RowError(number, mapping.get(name, name), message)
                    for name, message in exc.errors.items()
                ]
            else:
                if cleaned.member_number in seen:
                    problems.append(RowError(number, mapping["member_number"], DUPLICATE))
                seen[cleaned.member_number] = number
                out.seen.append((number, cleaned.member_number))
            if problems:
                errors += problems
            else:
                good.append(RosterRow(number, cleaned, membership, employment, unit_code))
        return out


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


# The checker of the file being checked in parallel, set before the processes are forked
# (they inherit it, with the stored roster it compares against, instead of receiving a copy).
_forked_checker: _RowChecker | None = None


def _check_forked(rows: list[tuple[int, list[str]]]) -> _Checked:
    assert _forked_checker is not None
    return _forked_checker(rows)


def _check_in_parallel(
    roster: RosterFile,
    checker: _RowChecker,
    processes: int,
    progress: Callable[[int], None] | None,
) -> tuple[list[RosterRow], list[RowError], list[tuple[str, str | None]]]:
    """Checking is Python work, one core per process: this process reads the file and hands
    out slices of rows (a few at a time, so the file is never in memory twice) to forked
    processes, then joins what they found in file order. Only ``ratify worker`` and the CLI
    ask for this (forking a web server's threads would be unsafe)."""
    global _forked_checker
    _forked_checker = checker
    joined = _Joined(checker.mapping["member_number"])
    try:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            pending: deque[tuple[int, _Checked, AsyncResult[_Checked]]] = deque()

            def join_first() -> None:
                end, same, checked = pending.popleft()
                joined.add(same, checked.get())
                if progress is not None and end < roster.row_count:
                    progress(end)

            for first, rows in _slices(roster.iter_rows(), PROGRESS_EVERY):
                same, rest = checker.split_same(first, rows)
                pending.append((first + len(rows), same, pool.apply_async(_check_forked, (rest,))))
                if len(pending) > 2 * processes:
                    join_first()
            while pending:
                join_first()
    finally:
        _forked_checker = None
    return joined.result()


@dataclass
class Change:
    member_number: str
    name: str
    fields: dict[str, tuple[str, str]] = field(default_factory=dict)  # field -> (before, after)


@dataclass
class Preview:
    roster: RosterFile
    scope: ImportScope
    unit: BargainingUnit | None
    effective: date
    mapping: dict[str, str]
    rows: list[RosterRow]
    errors: list[RowError]
    new: list[RosterRow] = field(default_factory=list)
    changed: list[tuple[RosterRow, Change]] = field(default_factory=list)
    leaving: list[tuple[Any, BargainingUnit]] = field(default_factory=list)  # (member row, unit)
    unchanged: int = 0
    scoped_codes: set[str] = field(default_factory=set)  # units whose leavers were computed

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.roster.row_count,
            "new": len(self.new),
            "changed": len(self.changed),
            "leaving": len(self.leaving),
            "unchanged": self.unchanged,
            "errors": self.rows_in_error,
        }

    @property
    def rows_in_error(self) -> int:
        return len({error.row for error in self.errors})

    def leaving_share(self, in_scope: int) -> float:
        return len(self.leaving) / in_scope if in_scope else 0.0


STATUS_COLUMNS = (
    (StatusKind.MEMBERSHIP, "membership_status", MEMBERSHIP_WORDS),
    (StatusKind.EMPLOYMENT, "employment_status", EMPLOYMENT_WORDS),
)


SEPARATOR = "\x1f"  # between the values a fingerprint covers (a row holding one is checked)


def fingerprint(values: Sequence[str]) -> bytes:
    """What a row says of a member, in 8 bytes (two different rows of one member agreeing by
    chance is a 1 in 2**64 event). PostgreSQL computes the same over stored values."""
    return hashlib.md5(SEPARATOR.join(values).encode(), usedforsecurity=False).digest()[:8]


def _stored(
    db: Session, org: Organization, mapping: Mapping[str, str], compared: list[str]
) -> tuple[dict[str, bytes], dict[str, tuple[str, ...]]]:
    """The roster as it stands, small: member number -> fingerprint of what this file's
    columns would say of the member, and member number -> the unit codes they are in today.
    A 300,000-member roster as ORM objects, or even as full rows, would cost far more memory.
    One streamed query of plain (Core) rows (a member in two units comes twice); PostgreSQL
    computes the fingerprints itself, so only numbers, 8 bytes and unit codes travel."""
    periods = {
        kind: aliased(MemberStatusPeriod, name=f"{kind.value}_period")
        for kind, column, _ in STATUS_COLUMNS
        if column in mapping
    }
    unit = aliased(BargainingUnit, name="unit_code")
    postgres = db.get_bind().dialect.name == "postgresql"

    def as_text(name: str) -> ColumnElement[Any]:
        column = getattr(Member, name)
        if name in DATE_FIELDS and postgres:  # whatever the session's DateStyle
            return func.coalesce(func.to_char(column, "YYYY-MM-DD"), "")
        return func.coalesce(cast(column, String), "")  # SQLite keeps dates as YYYY-MM-DD

    shown = [as_text(name) for name in compared]  # nothing (NULL) as ""
    shown += [func.coalesce(period.status, "") for period in periods.values()]
    shown = shown or [literal("")]  # only a member number: every stored member looks alike
    if postgres:
        digest = func.substr(
            func.decode(func.md5(func.concat_ws(literal_column("chr(31)"), *shown)), "hex"), 1, 8
        )
        columns: list[ColumnElement[Any]] = [digest]
    else:
        columns = shown
    stmt = (
        select(Member.member_number, *columns, unit.code)
        .outerjoin(
            UnitAssignment,
            and_(UnitAssignment.member_id == Member.id, UnitAssignment.end_date.is_(None)),
        )
        .outerjoin(unit, unit.id == UnitAssignment.unit_id)
        .where(Member.organization_id == org.id)
    )
    for kind, period in periods.items():
        stmt = stmt.outerjoin(
            period,
            and_(period.member_id == Member.id, period.kind == kind, period.end_date.is_(None)),
        )
    if postgres:
        # Streamed through a cursor, which PostgreSQL would plan for the first rows (nested
        # loops); all of them are wanted, so plan for all (hash joins).
        db.execute(text("SET LOCAL cursor_tuple_fraction = 1.0"))
    members: dict[str, bytes] = {}
    units: dict[str, tuple[str, ...]] = {}
    codes: dict[str, str] = {}  # one string per unit code, shared by every member in it
    for row in db.connection().execute(stmt.execution_options(yield_per=20_000)):
        number, code = row[0], row[-1]
        if number not in members:
            number = sys.intern(number)
            members[number] = bytes(row[1]) if postgres else fingerprint(row[1:-1])
        if code is not None:
            units[number] = (*units.get(number, ()), codes.setdefault(code, code))
    return members, units


def _chunks(items: list[Any], size: int = 5000) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def preview(
    db: Session,
    org: Organization,
    roster: RosterFile,
    *,
    mapping: Mapping[str, str],
    scope: ImportScope,
    unit: BargainingUnit | None,
    effective: date,
    phone_region: str,
    progress: Callable[[int], None] | None = None,
    processes: int = 1,
) -> Preview:
    """What applying the file would do: new, changed (field by field), leaving, unchanged.
    ``processes``: how many processes check a large file's rows (see ``check_rows``)."""
    rosters.require_union(org)
    if scope == ImportScope.UNIT and unit is None:
        raise BadRequest(N_("Choose the bargaining unit this file is for."))
    if scope == ImportScope.UNIT_COLUMN and "unit" not in mapping:
        raise BadRequest(N_("Map the column that names each member's unit."))
    check_mapping(roster, mapping)
    units = {u.code: u for u in rosters.list_units(db, org)}
    compared = [
        n for n in MemberFields.__dataclass_fields__ if n in mapping and n != "member_number"
    ]
    members, current_units = _stored(db, org, mapping, compared)

    # A row whose text is what is stored for its member (same fingerprint) is only
    # counted; the rest are checked. Cells are taken as they are: one with stray spaces just
    # misses this shortcut and is checked like a changed row.
    statuses = [(column, words_) for _, column, words_ in STATUS_COLUMNS if column in mapping]
    positions = [
        roster.headers.index(mapping[name])
        for name in ["member_number", *compared, *(column for column, _ in statuses)]
    ]
    unit_at = roster.headers.index(mapping["unit"]) if "unit" in mapping else None
    width = max([*positions, unit_at or 0]) + 1
    pick = itemgetter(*positions, positions[0])  # two at least, so always a tuple
    status_words: dict[tuple[int, str], str | None] = {}
    end = 1 + len(compared)

    scope_code = unit.code if scope == ImportScope.UNIT and unit is not None else None

    def same_as_stored(cells: list[str]) -> bool:
        if len(cells) < width:
            return False
        picked = pick(cells)
        number = picked[0]
        stored = members.get(number)
        if stored is None:
            return False
        if SEPARATOR in "".join(picked[1:end]):
            return False  # it could make two different rows' fingerprints agree
        status: list[str] = []
        for j, (_, words_) in enumerate(statuses):
            raw = picked[end + j]
            if (j, raw) not in status_words:
                found = words_.get(words(raw))
                status_words[(j, raw)] = found.value if found is not None else None
            value = status_words[(j, raw)]
            if value is None:
                return False
            status.append(value)
        if fingerprint((*picked[1:end], *status)) != stored:
            return False
        listed = cells[unit_at].strip().upper() if unit_at is not None else None
        if listed is not None and listed not in units:
            return False  # checked in full, where an unknown unit code is an error
        target = scope_code if scope_code is not None else listed
        return target is None or target in current_units.get(number, ())

    rows, errors, same = check_rows(
        roster,
        mapping,
        phone_region=phone_region,
        unit_codes=set(units),
        same_as_stored=same_as_stored,
        progress=progress,
        known=members,
        processes=processes,
    )
    result = Preview(roster, scope, unit, effective, dict(mapping), rows, errors)
    result.unchanged = len(same)
    in_file = {number for number, _ in same}
    in_file.update(row.fields.member_number for row in rows)
    result.new = [row for row in rows if row.fields.member_number not in members]
    known = [row for row in rows if row.fields.member_number in members]
    for chunk in _chunks(known):
        before = _members_by_number(db, org, [row.fields.member_number for row in chunk])
        ids = [before[row.fields.member_number].id for row in chunk]
        status_before = {
            (member_id, kind): status
            for member_id, kind, status in db.execute(
                select(
                    MemberStatusPeriod.member_id, MemberStatusPeriod.kind, MemberStatusPeriod.status
                ).where(
                    MemberStatusPeriod.member_id.in_(ids), MemberStatusPeriod.end_date.is_(None)
                )
            )
        }
        for row in chunk:
            change = _change(row, before[row.fields.member_number], status_before, mapping)
            target = _target_unit(row, scope, unit)
            held = current_units.get(row.fields.member_number, ())
            if target is not None and target not in held:
                change.fields["unit"] = (", ".join(sorted(held)), target)
            if change.fields:
                result.changed.append((row, change))
            else:
                result.unchanged += 1
    if scope != ImportScope.UPDATE_ONLY:
        listed = [(r.fields.member_number, r.unit_code) for r in rows] + same
        scoped = (
            {unit.code}
            if scope == ImportScope.UNIT and unit
            else {code for _, code in listed if code}
        )
        result.scoped_codes = scoped
        leaving = [
            (number, code)
            for number, codes in current_units.items()
            if number not in in_file
            for code in sorted(set(codes) & scoped)
        ]
        if scope == ImportScope.UNIT_COLUMN:
            # Listed under another of the file's units: a transfer, so they leave this one.
            for listed_number, listed_code in listed:
                moved_from = (set(current_units.get(listed_number, ())) & scoped) - {listed_code}
                leaving += [(listed_number, code) for code in sorted(moved_from)]
        for chunk in _chunks(leaving):
            who = _members_by_number(db, org, [number for number, _ in chunk])
            result.leaving += [(who[number], units[code]) for number, code in chunk]
    return result


def _members_by_number(db: Session, org: Organization, numbers: list[str]) -> dict[str, Any]:
    columns = [getattr(Member, name) for name in MemberFields.__dataclass_fields__]
    stmt = select(Member.id, *columns).where(
        Member.organization_id == org.id, Member.member_number.in_(numbers)
    )
    return {row.member_number: row for row in db.execute(stmt)}


def _change(
    row: RosterRow,
    member: Any,
    status_before: Mapping[tuple[uuid.UUID, StatusKind], str],
    mapping: Mapping[str, str],
) -> Change:
    """What the row would change in the stored member, field by field (columns the file does
    not have change nothing)."""
    change = Change(row.fields.member_number, f"{member.first_name} {member.last_name}".strip())
    for name in MemberFields.__dataclass_fields__:
        if name in mapping:
            before, after = getattr(member, name), getattr(row.fields, name)
            if before != after:
                change.fields[name] = (_show(before), _show(after))
    for kind, value in (
        (StatusKind.MEMBERSHIP, row.membership),
        (StatusKind.EMPLOYMENT, row.employment),
    ):
        before_status = status_before.get((member.id, kind))
        if value is not None and before_status != value.value:
            change.fields[f"{kind.value}_status"] = (before_status or "", value.value)
    return change


def _target_unit(row: RosterRow, scope: ImportScope, unit: BargainingUnit | None) -> str | None:
    if scope == ImportScope.UNIT:
        return unit.code if unit else None
    return row.unit_code


def _show(value: object) -> str:
    return value.isoformat() if isinstance(value, date) else str(value or "")


def scope_size(db: Session, org: Organization, result: Preview) -> int:
    """How many members are in the units this file covers today (for the leaving share)."""
    if result.scope == ImportScope.UPDATE_ONLY:
        return 0
    codes = result.scoped_codes
    stmt = (
        select(func.count(distinct(UnitAssignment.member_id)))
        .join(BargainingUnit, BargainingUnit.id == UnitAssignment.unit_id)
        .where(
            BargainingUnit.organization_id == org.id,
            BargainingUnit.code.in_(codes),
            UnitAssignment.end_date.is_(None),
        )
    )
    return db.execute(stmt).scalar_one()


def apply(
    db: Session,
    org: Organization,
    result: Preview,
    *,
    actor_label: str,
    actor: StaffUser | None = None,
    phone_region: str,
    confirm_leaving: bool = False,
) -> RosterImport:
    """Apply a preview in the caller's transaction: all of it, or (on any error) nothing."""
    if result.errors:
        raise Conflict(
            N_("%(count)s rows have errors: nothing was imported. Correct the file and try again."),
            count=result.rows_in_error,
        )
    refuse_seen_file(db, org, result.roster)
    if not confirm_leaving and needs_confirmation(db, org, result):
        raise Conflict(
            N_("%(count)s members would leave their unit: confirm that this file is complete."),
            count=len(result.leaving),
        )
    units = {u.code: u for u in rosters.list_units(db, org)}
    effective = result.effective
    record = record_import(
        db,
        org,
        result.roster,
        scope=result.scope,
        unit=result.unit,
        effective=effective,
        mapping=result.mapping,
        counts=result.counts(),
        actor=actor,
        actor_label=actor_label,
        action="roster.imported",
    )
    _insert_new_members(db, org, result, units, effective, record)
    touched = [
        (member_id, "changed")
        for member_id in _update_changed_members(db, org, result, units, effective)
    ]
    touched += [(member.id, "leaving") for member, _ in result.leaving]
    for unit in {unit.id: unit for _, unit in result.leaving}.values():
        leavers = [m.id for m, u in result.leaving if u.id == unit.id]
        for start in range(0, len(leavers), BATCH):
            db.execute(
                update(UnitAssignment)
                .where(
                    UnitAssignment.unit_id == unit.id,
                    UnitAssignment.member_id.in_(leavers[start : start + BATCH]),
                    UnitAssignment.end_date.is_(None),
                    UnitAssignment.start_date <= effective,
                )
                .values(end_date=effective)
                .execution_options(synchronize_session=False)
            )
    bulk_insert(
        db,
        ImportTouch,
        [
            {
                "id": uuid.uuid4(),
                "roster_import_id": record.id,
                "member_id": member_id,
                "change": change,
            }
            for member_id, change in touched
        ],
    )
    if len(result.new) + len(result.changed) + len(result.leaving) >= ANALYZE_AFTER:
        analyze(db, Member, MemberStatusPeriod, UnitAssignment, ImportTouch)
    return record


def refuse_seen_file(db: Session, org: Organization, roster: RosterFile) -> None:
    seen = db.execute(
        select(RosterImport.id).where(
            RosterImport.organization_id == org.id, RosterImport.digest == roster.digest
        )
    ).first()
    if seen:
        raise Conflict(N_("This exact file was already imported."))


def record_import(
    db: Session,
    org: Organization,
    roster: RosterFile,
    *,
    scope: ImportScope,
    unit: BargainingUnit | None,
    effective: date,
    mapping: dict[str, str],
    counts: dict[str, int],
    actor: StaffUser | None,
    actor_label: str,
    action: str,
) -> RosterImport:
    """The import's history row (who, when, file, digest, counts) and its one audit event."""
    record = RosterImport(
        organization_id=org.id,
        file_name=roster.file_name[:255],
        digest=roster.digest,
        scope=scope,
        unit_id=unit.id if unit else None,
        effective_date=effective,
        mapping=mapping,
        counts=counts,
        actor_label=actor_label,
    )
    db.add(record)
    db.flush()
    audit.record(
        db,
        organization=org,
        actor=actor,
        actor_label=actor_label,
        action=action,
        object_type="roster_import",
        object_id=record.id,
        data={"file": record.file_name, "digest": record.digest, **counts},
    )
    return record


BATCH = 5000
LEAVING_SHARE = 0.2  # a file that would take more of its units' members out asks first
ANALYZE_AFTER = 5000  # rows an import adds or changes before the planner's statistics are refreshed


def _insert_new_members(
    db: Session,
    org: Organization,
    result: Preview,
    units: Mapping[str, BargainingUnit],
    effective: date,
    roster_import: RosterImport,
) -> None:
    """New members in bulk: the members (marked with the import that added them), then their
    first status periods, then their unit assignments, each table in one stream of rows
    (COPY on PostgreSQL, which stores rows while the next ones are made here, so the two
    cores work at once; multi-row INSERTs on SQLite).

    Each table's new keys are random (version 4) UUIDs handed out in ascending order, and
    the rows go in that order: so every index on a key or a member id fills page by page.
    Random keys in random order cost PostgreSQL about 5 µs a row for each index, a third of
    the whole apply of a first import, and sorting them there spilled to disk.

    The preview already checked every row and that none of these member numbers exists yet."""
    if not result.new:
        return
    count = len(result.new)
    member_ids = ascending_uuids(count)
    names = list(MemberFields.__dataclass_fields__)
    now = utcnow()
    tail = (now, now, roster_import.id)

    def members() -> Iterator[tuple[Any, ...]]:
        for row, member_id in zip(result.new, member_ids, strict=True):
            fields = row.fields
            yield (
                member_id,
                org.id,
                *_FIELDS_OF(fields),
                rosters.sort_name(fields.first_name, fields.last_name),
                *tail,
            )

    copy_rows(
        db,
        Member,
        ["id", "organization_id", *names, "sort_name", "created_at", "updated_at",
         "added_by_import_id"],
        members(),
    )  # fmt: skip
    period = ["id", "member_id", "kind", "status", "start_date"]

    def membership(row: RosterRow) -> str:
        return (row.membership or MembershipStatus.MEMBER).value

    def employment(row: RosterRow) -> str:
        return (row.employment or EmploymentStatus.ACTIVE).value

    status_of: Callable[[RosterRow], str]
    for kind, status_of in (
        (StatusKind.MEMBERSHIP, membership),
        (StatusKind.EMPLOYMENT, employment),
    ):
        copy_rows(
            db,
            MemberStatusPeriod,
            period,
            (
                (key, member_id, kind.value, status_of(row), effective)
                for key, member_id, row in zip(
                    ascending_uuids(count), member_ids, result.new, strict=True
                )
            ),
        )
    unit_ids = {code: unit.id for code, unit in units.items()}

    def assignments() -> Iterator[tuple[Any, ...]]:
        keys = iter(ascending_uuids(count))
        for member_id, row in zip(member_ids, result.new, strict=True):
            target = _target_unit(row, result.scope, result.unit)
            if target:
                yield next(keys), member_id, unit_ids[target], effective

    copy_rows(db, UnitAssignment, ["id", "member_id", "unit_id", "start_date"], assignments())


def _update_changed_members(
    db: Session,
    org: Organization,
    result: Preview,
    units: Mapping[str, BargainingUnit],
    effective: date,
) -> list[uuid.UUID]:
    """Changed fields, status changes and unit moves for many members at once: a few
    statements per few thousand members, not several per member."""
    if not result.changed:
        return []
    ids = queries.member_ids(db, org, (row.fields.member_number for row, _ in result.changed))
    changed_ids = [ids[row.fields.member_number] for row, _ in result.changed]
    names: dict[uuid.UUID, tuple[str, str]] = {}
    open_periods: dict[tuple[uuid.UUID, StatusKind], Any] = {}
    for start in range(0, len(changed_ids), BATCH):
        chunk = changed_ids[start : start + BATCH]
        names.update(
            (i, (first, last))
            for i, first, last in db.execute(
                select(Member.id, Member.first_name, Member.last_name).where(Member.id.in_(chunk))
            ).all()
        )
        for period in db.execute(
            select(
                MemberStatusPeriod.id,
                MemberStatusPeriod.member_id,
                MemberStatusPeriod.kind,
                MemberStatusPeriod.status,
                MemberStatusPeriod.start_date,
            ).where(MemberStatusPeriod.member_id.in_(chunk), MemberStatusPeriod.end_date.is_(None))
        ).all():
            open_periods[(period.member_id, period.kind)] = period
    field_updates: list[dict[str, object]] = []
    close: list[uuid.UUID] = []
    corrections: list[dict[str, object]] = []
    new_periods: list[dict[str, object]] = []
    new_assignments: list[dict[str, object]] = []
    for (row, change), member_id in zip(result.changed, changed_ids, strict=True):
        values = {
            name: getattr(row.fields, name)
            for name in change.fields
            if name in MemberFields.__dataclass_fields__
        }
        if values:
            first, last = names[member_id]
            values["sort_name"] = rosters.sort_name(
                str(values.get("first_name", first)), str(values.get("last_name", last))
            )
            field_updates.append({"id": member_id, **values, "updated_at": utcnow()})
        for kind, status in (
            (StatusKind.MEMBERSHIP, row.membership),
            (StatusKind.EMPLOYMENT, row.employment),
        ):
            if status is None:
                continue
            current = open_periods.get((member_id, kind))
            if current is not None and current.status == status.value:
                continue
            if current is not None and current.start_date >= effective:
                # A correction on (or before) the day the current status began.
                corrections.append({"id": current.id, "status": status.value})
                continue
            if current is not None:
                close.append(current.id)
            new_periods.append(
                {"id": uuid.uuid4(), "member_id": member_id, "kind": kind,
                 "status": status.value, "start_date": effective, "end_date": None}
            )  # fmt: skip
        target = _target_unit(row, result.scope, result.unit)
        if target and "unit" in change.fields:
            new_assignments.append(
                {"id": uuid.uuid4(), "member_id": member_id, "unit_id": units[target].id,
                 "start_date": effective, "end_date": None}
            )  # fmt: skip
    for start in range(0, len(close), BATCH):
        db.execute(
            update(MemberStatusPeriod)
            .where(MemberStatusPeriod.id.in_(close[start : start + BATCH]))
            .values(end_date=effective)
            .execution_options(synchronize_session=False)
        )
    for table, rows in ((Member, field_updates), (MemberStatusPeriod, corrections)):
        for start in range(0, len(rows), BATCH):
            db.execute(update(table), rows[start : start + BATCH])
    bulk_insert(db, MemberStatusPeriod, new_periods)
    bulk_insert(db, UnitAssignment, new_assignments)
    return changed_ids


def parse_mapping(spec: str) -> dict[str, str]:
    """``field=Header,field=Header`` from the command line."""
    mapping = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, header = part.partition("=")
        if not sep or name.strip() not in SYNONYMS:
            raise BadRequest(N_("Unknown field in the mapping: %(field)s"), field=name.strip())
        mapping[name.strip()] = header.strip()
    return mapping


# -- uploads through the pages -------------------------------------------------------------------


def store_upload(
    db: Session,
    org: Organization,
    *,
    actor: StaffUser | None,
    file_name: str,
    data: bytes,
    scope: ImportScope,
    unit: BargainingUnit | None,
    effective: date,
    source: str,
) -> RosterUpload:
    """Keep an uploaded file for the next steps, with a first guess at its columns (the
    mapping saved for this source, when the file has all its columns)."""
    rosters.require_union(org)
    roster = read_roster(file_name, data)  # refuses an unreadable file before storing it
    if scope == ImportScope.UNIT and unit is None:
        raise BadRequest(N_("Choose the bargaining unit this file is for."))
    source = source.strip()[:100]
    mapping = guess_mapping(roster.headers)
    saved = db.execute(
        select(ColumnMapping).where(
            ColumnMapping.organization_id == org.id, ColumnMapping.source == source
        )
    ).scalar_one_or_none()
    if source and saved and set(saved.mapping.values()) <= set(roster.headers):
        mapping = dict(saved.mapping)
    upload = RosterUpload(
        organization_id=org.id,
        file_name=file_name[:255] or "roster.csv",
        data=data,
        digest=roster.digest,
        source=source,
        scope=scope,
        unit_id=unit.id if unit else None,
        effective_date=effective,
        mapping=mapping,
        created_by_id=actor.id if actor else None,
        row_count=roster.row_count,
    )
    db.add(upload)
    db.flush()
    return upload


def get_upload(db: Session, org: Organization, upload_id: uuid.UUID) -> RosterUpload:
    """An upload of *this* organization; anyone else's is 404."""
    stmt = (
        select(RosterUpload)
        .options(defer(RosterUpload.data))  # read only by the steps that need the file
        .where(RosterUpload.id == upload_id, RosterUpload.organization_id == org.id)
    )
    upload = db.execute(stmt).scalar_one_or_none()
    if upload is None:
        raise NotFound()
    return upload


def roster_of(upload: RosterUpload) -> RosterFile:
    return read_roster(upload.file_name, upload.data)


def one_import_at_a_time(db: Session, org: Organization) -> None:
    """Imports of one organization (files, API batches, the worker's) run one after another
    from their preview on: two adding the same new member at once would otherwise both see
    it missing. (NO KEY UPDATE: rows that merely reference the organization, audit events
    say, are not held up.)"""
    db.execute(
        select(Organization.id).where(Organization.id == org.id).with_for_update(key_share=True)
    )


def locked(db: Session, upload: RosterUpload) -> RosterUpload:
    """The upload row-locked and read again: of two requests changing one upload (two tabs,
    two clicks), the second waits for the first and then sees what it did. (SQLite's write
    lock serializes them anyway.)"""
    return db.execute(
        select(RosterUpload)
        .options(defer(RosterUpload.data))  # not the whole file again
        .where(RosterUpload.id == upload.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def preview_version(upload: RosterUpload, counts: Mapping[str, int]) -> str:
    """Names the preview a page showed: its columns, its file and what it counted. An apply
    from a page whose preview is no longer what applying would do (the columns changed in
    another tab, or the roster since) is refused."""
    text = json.dumps([upload.mapping, upload.digest, counts], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


OUT_OF_DATE = N_(
    "This preview is out of date: the columns or the roster changed since. Look at it again."
)


def set_mapping(
    db: Session, org: Organization, upload: RosterUpload, mapping: Mapping[str, str]
) -> None:
    """Use these columns for this upload, and remember them for its source."""
    headers = set(headers_of(upload))
    clean = {k: v for k, v in mapping.items() if v}
    unknown_fields = set(clean) - set(SYNONYMS)
    if unknown_fields or not set(clean.values()) <= headers:
        raise BadRequest(
            N_("The mapping names columns the file does not have: %(columns)s"),
            columns=", ".join(sorted(set(clean.values()) - headers) or unknown_fields),
        )
    if "member_number" not in clean:
        raise BadRequest(N_("Map a column to the member number: every row needs one."))
    upload = locked(db, upload)
    refuse_busy(db, upload)
    upload.mapping = clean
    upload.state, upload.summary, upload.problem = UploadState.READY, None, None
    if upload.source:
        saved = db.execute(
            select(ColumnMapping).where(
                ColumnMapping.organization_id == org.id, ColumnMapping.source == upload.source
            )
        ).scalar_one_or_none()
        if saved is None:
            db.add(ColumnMapping(organization_id=org.id, source=upload.source, mapping=clean))
        else:
            saved.mapping = clean
            saved.updated_at = utcnow()
    db.flush()


def preview_upload(
    db: Session,
    org: Organization,
    upload: RosterUpload,
    phone_region: str,
    progress: Callable[[int], None] | None = None,
    processes: int = 1,
) -> Preview:
    unit = db.get(BargainingUnit, upload.unit_id) if upload.unit_id else None
    return preview(
        db,
        org,
        roster_of(upload),
        mapping=upload.mapping,
        scope=upload.scope,
        unit=unit,
        effective=upload.effective_date,
        phone_region=phone_region,
        progress=progress,
        processes=processes,
    )


def apply_upload(
    db: Session,
    org: Organization,
    upload: RosterUpload,
    *,
    actor: StaffUser | None,
    phone_region: str,
    confirm_leaving: bool,
    actor_label: str | None = None,
    version: str | None = None,
    expected: Mapping[str, int] | None = None,
    processes: int = 1,
) -> RosterImport:
    """Apply an upload once: a second apply of the same preview is refused. ``actor_label``
    names who applied it when no staff member did (an API token, say). ``version`` is the
    preview the person saw (refused if the columns changed since); ``expected`` the counts
    they saw (refused if the roster changed since, so what is applied is what was shown)."""
    one_import_at_a_time(db, org)
    upload = locked(db, upload)  # of two clicks on Apply, the second sees the first done
    if upload.roster_import_id is not None:
        raise Conflict(N_("This file was already imported."))
    result = preview_upload(db, org, upload, phone_region, processes=processes)
    if version is not None and version != preview_version(upload, result.counts()):
        raise Conflict(OUT_OF_DATE)
    if expected is not None and result.counts() != dict(expected):
        raise Conflict(N_("The roster changed since the file was checked: check it again."))
    record = apply(
        db,
        org,
        result,
        actor=actor,
        actor_label=actor_label or (actor.email if actor else "?"),
        phone_region=phone_region,
        confirm_leaving=confirm_leaving,
    )
    upload.roster_import_id = record.id
    upload.state, upload.problem = UploadState.APPLIED, None
    db.flush()
    return record


# -- large files, through ``ratify worker`` ------------------------------------------------------

SHOWN = 100  # rows of each kind a preview shows
ERRORS_KEPT = 10_000  # row errors a stored preview keeps (its CSV says when there were more)
CHECK_TASK = "roster.check"
APPLY_TASK = "roster.apply"


def in_background(upload: RosterUpload, settings_rows: int) -> bool:
    return upload.row_count > settings_rows


def needs_confirmation(db: Session, org: Organization, result: Preview) -> bool:
    return result.leaving_share(scope_size(db, org, result)) > LEAVING_SHARE


def summarize(db: Session, org: Organization, result: Preview) -> dict[str, Any]:
    """What the preview page shows, as plain JSON: kept with a large upload, so the page need
    not check 300,000 rows again each time it is shown."""
    return {
        "counts": result.counts(),
        "needs_confirmation": needs_confirmation(db, org, result),
        "errors": [[e.row, e.column, e.message] for e in result.errors[:ERRORS_KEPT]],
        "new": [
            [r.fields.member_number, r.fields.last_name, r.fields.first_name]
            for r in result.new[:SHOWN]
        ],
        "changed": [
            [c.member_number, c.name, {k: list(v) for k, v in sorted(c.fields.items())}]
            for _, c in result.changed[:SHOWN]
        ],
        "leaving": [
            [m.member_number, m.last_name, m.first_name, u.code] for m, u in result.leaving[:SHOWN]
        ],
    }


def refuse_busy(db: Session, upload: RosterUpload) -> None:
    """Refused while a worker works on the upload (unless it gave up), or once imported."""
    if upload.roster_import_id is not None or upload.state == UploadState.APPLIED:
        raise Conflict(N_("This file was already imported."))
    busy = upload.state in (UploadState.CHECKING, UploadState.APPLYING)
    if busy and not worker_gave_up(db, upload):
        raise Conflict(N_("This file is being worked on: wait until it is done."))


def worker_gave_up(db: Session, upload: RosterUpload) -> bool:
    """The upload's job failed on every attempt (a bug, a lost database): the page says so
    rather than wait for ever."""
    job = db.get(Job, upload.job_id) if upload.job_id else None
    return job is not None and job.status == JobStatus.DEAD


def problem_of(upload: RosterUpload) -> tuple[str, dict[str, Any]]:
    """Why the worker refused the upload: a message to translate, and its values."""
    problem = upload.problem or {}
    return str(problem.get("message", "")), dict(problem.get("params", {}))


def check_later(db: Session, org: Organization, upload: RosterUpload) -> None:
    """Have a worker check every row of a large upload (the page shows its progress)."""
    upload = locked(db, upload)
    refuse_busy(db, upload)
    job = jobs.enqueue(db, CHECK_TASK, {"upload_id": str(upload.id)}, organization_id=org.id)
    job.payload = {**job.payload, "job_id": str(job.id)}  # a stale run finds its job replaced
    upload.state, upload.rows_done, upload.summary, upload.problem = (
        UploadState.CHECKING, 0, None, None
    )  # fmt: skip
    upload.job_id = job.id
    db.flush()


def apply_later(
    db: Session,
    org: Organization,
    upload: RosterUpload,
    *,
    actor: StaffUser | None,
    confirm_leaving: bool,
    actor_label: str | None = None,
    version: str | None = None,
) -> None:
    """Have a worker apply a checked large upload, in the name of ``actor`` (or of
    ``actor_label``: an API token, say), exactly as previewed: ``version`` names the preview
    the person saw, and the worker refuses if the roster changed since the check."""
    upload = locked(db, upload)
    refuse_busy(db, upload)
    if upload.state != UploadState.CHECKED or upload.summary is None:
        raise Conflict(N_("Preview the changes before applying them."))
    if upload.summary["counts"]["errors"]:
        raise Conflict(
            N_("%(count)s rows have errors: nothing was imported. Correct the file and try again."),
            count=upload.summary["counts"]["errors"],
        )
    if upload.summary["needs_confirmation"] and not confirm_leaving:
        raise Conflict(
            N_("%(count)s members would leave their unit: confirm that this file is complete."),
            count=upload.summary["counts"]["leaving"],
        )
    if version is not None and version != preview_version(upload, upload.summary["counts"]):
        raise Conflict(OUT_OF_DATE)
    payload = {
        "upload_id": str(upload.id),
        "actor_id": str(actor.id) if actor else None,
        "actor_label": actor_label,
        "confirm_leaving": confirm_leaving,
        "expected": upload.summary["counts"],
    }
    job = jobs.enqueue(db, APPLY_TASK, payload, organization_id=org.id)
    upload.state, upload.rows_done, upload.problem, upload.job_id = (
        UploadState.APPLYING, 0, None, job.id
    )  # fmt: skip
    db.flush()


UPLOADS_KEPT = timedelta(days=30)  # then an uploaded file is deleted, applied or not


def list_open_uploads(db: Session, org: Organization, limit: int = 20) -> list[RosterUpload]:
    """Uploads not yet imported (and not yet deleted), newest first (the file itself is not
    loaded)."""
    stmt = (
        select(RosterUpload)
        .options(defer(RosterUpload.data))
        .where(
            RosterUpload.organization_id == org.id,
            RosterUpload.roster_import_id.is_(None),
            RosterUpload.created_at > utcnow() - UPLOADS_KEPT,
        )
        .order_by(RosterUpload.created_at.desc())
        .limit(limit)
    )
    return list(db.scalars(stmt))


def purge_old_uploads(db: Session, older_than: timedelta = UPLOADS_KEPT) -> int:
    """Uploaded files (members' names, addresses, phones) are kept only while they are being
    imported: after 30 days they go, applied or not. The import history keeps what each
    import did (file name, digest, counts); the roster keeps the members."""
    result = db.execute(
        delete(RosterUpload)
        .where(RosterUpload.created_at < utcnow() - older_than)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def list_imports(db: Session, org: Organization, limit: int = 50) -> list[RosterImport]:
    stmt = (
        select(RosterImport)
        .where(RosterImport.organization_id == org.id)
        .order_by(RosterImport.created_at.desc())
        .limit(limit)
    )
    return list(db.scalars(stmt))


def neutralize(cell: str) -> str:
    """A cell a spreadsheet would run as a formula, made plain text (OWASP's advice)."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def errors_csv(errors: list[RowError]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "column", "problem"])
    for error in errors:
        writer.writerow([error.row, neutralize(error.column), neutralize(error.message)])
    return out.getvalue()


__all__ = [
    "Preview",
    "RosterFile",
    "RosterFileError",
    "RowError",
    "apply",
    "check_rows",
    "guess_mapping",
    "parse_date",
    "parse_mapping",
    "preview",
    "read_roster",
    "roster_from_table",
]
