"""Parsing the vote set-up forms. Times are entered in the organization's zone and kept in
UTC; a time that a clock change skips is refused rather than guessed."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData

from ratify.errors import N_
from ratify.votes.models import SecondFactor, TallyGrouping, Vote
from ratify.votes.services import (
    EMPLOYMENT_CHOICES,
    FRACTIONS,
    MEMBERSHIP_CHOICES,
    YES_NO_KINDS,
    Threshold,
    VoteFields,
    saved_fields,
    within_years,
)
from ratify.web.forms import text_field


def _list(form: FormData | None, name: str) -> list[str]:
    if form is None:
        return []
    return [v.strip() for v in form.getlist(name) if isinstance(v, str)]


def _uuids(values: list[str]) -> frozenset[uuid.UUID]:
    found = set()
    for value in values:
        try:
            found.add(uuid.UUID(value))
        except ValueError:
            continue
    return frozenset(found)


def parse_local_time(value: str, timezone: str) -> tuple[datetime | None, str | None]:
    """(UTC time, None) or (None, error message) for a time written in ``timezone``."""
    if not value:
        return None, None
    try:
        naive = datetime.fromisoformat(value.replace(" ", "T"))
    except ValueError:
        return None, N_("Enter the date and time as YYYY-MM-DD HH:MM.")
    if naive.tzinfo is not None:
        naive = naive.replace(tzinfo=None)
    if not within_years(naive):  # before the zone's offset could overflow the calendar
        return None, N_("Enter the date and time as YYYY-MM-DD HH:MM.")
    zone = ZoneInfo(timezone)
    moment = naive.replace(tzinfo=zone).astimezone(UTC)
    if moment.astimezone(zone).replace(tzinfo=None) != naive:
        return None, N_("This time does not exist in the organization's time zone (clocks change).")
    return moment.replace(second=0, microsecond=0), None


def local_time(value: datetime | None, timezone: str) -> str:
    """A UTC time as the form's datetime-local field shows it."""
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%dT%H:%M")


def parse_vote_form(form: FormData | None, vote: Vote, timezone: str) -> VoteFields:
    errors: dict[str, str] = {}
    question = {lang: text_field(form, f"question_{lang}") for lang in vote.languages}
    options: list[dict[str, str]] = []
    if vote.kind in YES_NO_KINDS:
        for position in range(2):
            options.append(
                {lang: text_field(form, f"option_{position}_{lang}") for lang in vote.languages}
            )
    else:
        lines = {
            lang: [
                line.strip()
                for line in text_field(form, f"options_{lang}").replace("\r\n", "\n").split("\n")
                if line.strip()
            ]
            for lang in vote.languages
        }
        counts = {len(v) for v in lines.values()}
        if len(counts) > 1:
            for lang in vote.languages[1:]:
                errors[f"options_{lang}"] = N_(
                    "Write the same number of options, in the same order, in each language."
                )
        for position in range(max(counts or {0})):
            options.append(
                {lang: (v[position] if position < len(v) else "") for lang, v in lines.items()}
            )
    opens_at, error = parse_local_time(text_field(form, "opens"), timezone)
    if error:
        errors["opens"] = error
    closes_at, error = parse_local_time(text_field(form, "closes"), timezone)
    if error:
        errors["closes"] = error
    cutoff: date | None = None
    try:
        cutoff = date.fromisoformat(text_field(form, "cutoff"))
    except ValueError:
        cutoff = None
        errors["cutoff"] = N_("Enter the date as YYYY-MM-DD.")
    joined: int | None = None
    if text_field(form, "joined_days"):
        try:
            joined = int(text_field(form, "joined_days"))  # its range: services.check_fields
        except ValueError:
            errors["joined_days"] = N_("Enter a number of days.")
    try:
        grouping = TallyGrouping(text_field(form, "tally_grouping"))
    except ValueError:
        grouping = TallyGrouping.AGGREGATE
        errors["tally_grouping"] = N_("Choose how the votes are counted.")
    fraction = FRACTIONS.get(text_field(form, "threshold_fraction"))
    if fraction is None:
        fraction = (1, 2)
        errors["threshold_fraction"] = N_("Choose what share of the votes cast must say yes.")
    quorum: int | None = None
    if text_field(form, "quorum_percent"):
        try:
            quorum = int(text_field(form, "quorum_percent"))
        except ValueError:
            errors["quorum_percent"] = N_("Enter a percentage from 1 to 100, or leave it empty.")
    units_rule = text_field(form, "threshold_units")
    if units_rule not in ("aggregate", "every_unit"):
        units_rule = "aggregate"
    try:
        signatures = int(text_field(form, "signatures_required"))
    except ValueError:
        signatures = 0
    try:
        factor = SecondFactor(text_field(form, "second_factor"))
    except ValueError:
        factor = SecondFactor.MEMBER_LAST4
        errors["second_factor"] = N_("Choose the second factor.")
    return VoteFields(
        title=text_field(form, "title"),
        question=question,
        options=options,
        opens_at=opens_at,
        closes_at=closes_at,
        cutoff=cutoff,
        unit_ids=_uuids(_list(form, "units")),
        membership=frozenset(m for m in _list(form, "membership") if m in MEMBERSHIP_CHOICES),
        good_standing=text_field(form, "good_standing") == "1",
        employment=frozenset(e for e in _list(form, "employment") if e in EMPLOYMENT_CHOICES),
        joined_days_before=joined,
        tally_grouping=grouping,
        threshold=Threshold(
            fraction[0],
            fraction[1],
            quorum,
            units_rule,
            blank_counts=text_field(form, "blank_counts") == "1",
            merge_small_groups=text_field(form, "merge_small_groups") == "1",
        ),
        committee_ids=_uuids(_list(form, "committee")),
        signatures_required=signatures,
        second_factor=factor,
        mail_letters=text_field(form, "mail_letters") == "1",
        allow_blank=text_field(form, "allow_blank") == "1",
        constituency_id=next(iter(_uuids([text_field(form, "constituency")])), None),
        form_errors=errors,
    )


def form_values(form: FormData | None) -> dict[str, object]:
    """What was typed, to show again beside the messages (lists for the checkboxes)."""
    values: dict[str, object] = {}
    if form is None:
        return values
    for key in form:
        items = _list(form, key)
        values[key] = items if key in MULTI else (items[0] if items else "")
    return values


MULTI = frozenset({"units", "membership", "employment", "committee"})


def vote_values(vote: Vote, timezone: str, committee: list[uuid.UUID]) -> dict[str, object]:
    """A saved vote as the form shows it."""
    fields = saved_fields(vote, committee)
    values: dict[str, object] = {"title": fields.title}
    for lang in vote.languages:
        values[f"question_{lang}"] = fields.question.get(lang, "")
        if vote.kind in YES_NO_KINDS:
            for position, labels in enumerate(fields.options):
                values[f"option_{position}_{lang}"] = labels.get(lang, "")
        else:
            values[f"options_{lang}"] = "\n".join(o.get(lang, "") for o in fields.options)
    threshold = fields.threshold
    joined = fields.joined_days_before
    values.update(
        opens=local_time(fields.opens_at, timezone),
        closes=local_time(fields.closes_at, timezone),
        cutoff=fields.cutoff.isoformat() if fields.cutoff else "",
        units=sorted(str(u) for u in fields.unit_ids),
        membership=sorted(fields.membership),
        good_standing="1" if fields.good_standing else "",
        employment=sorted(fields.employment),
        joined_days=str(joined) if joined is not None else "",
        tally_grouping=fields.tally_grouping.value,
        threshold_fraction=f"{threshold.numerator}/{threshold.denominator}",
        quorum_percent=str(threshold.quorum_percent) if threshold.quorum_percent else "",
        threshold_units=threshold.units,
        allow_blank="1" if fields.allow_blank else "",
        blank_counts="1" if threshold.blank_counts else "",
        merge_small_groups="1" if threshold.merge_small_groups else "",
        committee=[str(c) for c in committee],
        signatures_required=str(fields.signatures_required),
        second_factor=fields.second_factor.value,
        mail_letters="1" if fields.mail_letters else "",
        constituency=str(fields.constituency_id) if fields.constituency_id else "",
    )
    return values
