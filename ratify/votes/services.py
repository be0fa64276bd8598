"""Setting up a vote and moving it through draft → scheduled → open → closed.

Every change is checked here (the pages only parse), refused with a 4xx error a person can act
on, and recorded in the audit log. Once a vote is scheduled its rule, committee and wording
are fixed (return it to draft to change them); once open nothing about it changes but an
administrator's extension of its window.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from markupsafe import escape
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, selectinload, undefer

from ratify.accounts.models import StaffRole, StaffUser
from ratify.audit import services as audit
from ratify.audit.models import AuditEvent
from ratify.authz import Role
from ratify.db import utcnow
from ratify.errors import N_, BadRequest, Conflict, NotFound, RatifyError
from ratify.jobs.models import Job, JobStatus
from ratify.orgs.models import Organization
from ratify.orgs.services import org_today
from ratify.rosters import services as rosters
from ratify.rosters.eligibility import EligibilityRule
from ratify.rosters.models import BargainingUnit
from ratify.settings import LANGUAGES
from ratify.votes import documents
from ratify.votes.models import (
    CommitteeMember,
    SecondFactor,
    TallyGrouping,
    Vote,
    VoteDocument,
    VoteKind,
    VoteOption,
    VoteStatus,
)

MIN_OPTIONS, MAX_OPTIONS = 2, 10
MAX_WINDOW = timedelta(days=90)
# Dates outside these years are typing mistakes, and near the ends of the calendar a time
# zone's offset, or the days before a cutoff, would overflow.
YEARS = (1900, 2200)
MEMBERSHIP_CHOICES = ("member", "fee_payer", "non_member")
EMPLOYMENT_CHOICES = ("active", "on_leave", "laid_off", "terminated")
# A new vote's rule until its set-up says otherwise.
DEFAULT_MEMBERSHIP = ("member",)
DEFAULT_EMPLOYMENT = ("active", "on_leave")
MAX_JOINED_DAYS = 36_500
FRACTIONS = {"1/2": (1, 2), "3/5": (3, 5), "2/3": (2, 3), "3/4": (3, 4)}
# Fixed Yes/No of a ratification, in each language the ballot may use (wording editable).
RATIFICATION_OPTIONS = (
    ("yes", {"en": "Yes, I accept the agreement", "es": "Sí, acepto el acuerdo"}),
    ("no", {"en": "No, I reject the agreement", "es": "No, rechazo el acuerdo"}),
)
# The blank (abstain) option a vote may offer last on its ballot (``Vote.allow_blank``): kept
# in step with that setting while the vote is a draft, its wording fixed.
BLANK = "blank"
BLANK_LABELS = {"en": "Blank (I abstain)", "es": "En blanco (me abstengo)"}
# An offer decision's two options: accept the offer, or reject it and keep campaigning.
OFFER_OPTIONS = (
    ("yes", {"en": "Accept the offer", "es": "Aceptar la oferta"}),
    ("no", {"en": "Reject it and keep campaigning", "es": "Rechazarla y seguir la campaña"}),
)
DEFAULT_OFFER_QUESTION = {
    "en": "Do you accept the offer?",
    "es": "¿Acepta la oferta?",
}
# Kinds whose ballot is a fixed pair, yes (the first) or no, worded per language.
YES_NO_KINDS = (VoteKind.RATIFICATION, VoteKind.OFFER_DECISION)
DEFAULT_QUESTION = {
    "en": "Do you accept the tentative agreement?",
    "es": "¿Acepta el acuerdo provisional?",
}


class VoteInvalid(BadRequest):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(N_("Some fields need correcting."))
        self.errors = errors


@dataclass(frozen=True)
class Threshold:
    """What passes, as ``votes.tally`` applies it: a majority (1/2) is *more than* half of the
    votes cast, any other fraction *at least* ``numerator/denominator`` of them (so a tie
    never passes), with an optional quorum: at least ``quorum_percent`` of the eligible
    voters voted. Per unit, either every unit must pass or the aggregate decides.
    ``blank_counts``: blank ballots count in the votes cast (so against), else they are only
    reported. ``merge_small_groups``: a group of fewer than 5 ballots is counted in the
    aggregate only, its own figures not shown (DESIGN.md §4 rule 6)."""

    numerator: int = 1
    denominator: int = 2
    quorum_percent: int | None = None
    units: str = "aggregate"  # or "every_unit"
    blank_counts: bool = False
    merge_small_groups: bool = False

    def stored(self) -> dict[str, Any]:
        return {
            "kind": "majority" if (self.numerator, self.denominator) == (1, 2) else "fraction",
            "numerator": self.numerator,
            "denominator": self.denominator,
            "quorum_percent": self.quorum_percent,
            "units": self.units,
            "blank_counts": self.blank_counts,
            "merge_small_groups": self.merge_small_groups,
        }


@dataclass(frozen=True)
class VoteFields:
    """Everything the set-up form says about a vote."""

    title: str
    question: dict[str, str]
    options: list[dict[str, str]]  # in ballot order: language -> wording
    opens_at: datetime | None
    closes_at: datetime | None
    cutoff: date | None
    unit_ids: frozenset[uuid.UUID]
    membership: frozenset[str]
    good_standing: bool
    employment: frozenset[str]
    joined_days_before: int | None
    tally_grouping: TallyGrouping
    threshold: Threshold
    committee_ids: frozenset[uuid.UUID]
    signatures_required: int
    second_factor: SecondFactor
    mail_letters: bool
    # A blank option ("I abstain", key ``BLANK``) last on the ballot; not among ``options``.
    allow_blank: bool = False
    # An offer decision's electorate: a constituency (``unit_ids`` and the rest unused).
    constituency_id: uuid.UUID | None = None
    form_errors: dict[str, str] = field(default_factory=dict)  # what the form could not read


# -- reading ----------------------------------------------------------------------------------


def list_votes(db: Session, org: Organization) -> list[Vote]:
    stmt = (
        select(Vote)
        .where(Vote.organization_id == org.id)
        .order_by(Vote.opens_at.desc().nulls_first(), Vote.created_at.desc())
    )
    return list(db.scalars(stmt))


def get_vote(db: Session, org: Organization, vote_id: uuid.UUID, *, lock: bool = False) -> Vote:
    """A vote of *this* organization, with its options; anyone else's is 404."""
    stmt = (
        select(Vote)
        .where(Vote.id == vote_id, Vote.organization_id == org.id)
        .options(selectinload(Vote.options))
    )
    if lock:
        stmt = stmt.with_for_update(of=Vote)
    vote = db.execute(stmt).scalar_one_or_none()
    if vote is None:
        raise NotFound()
    return vote


def committee_candidates(db: Session, org: Organization) -> list[StaffUser]:
    """Staff users who hold the committee role in the organization."""
    stmt = (
        select(StaffUser)
        .join(StaffRole, StaffRole.user_id == StaffUser.id)
        .where(StaffRole.organization_id == org.id, StaffRole.role == Role.COMMITTEE)
        .order_by(StaffUser.name, StaffUser.email)
    )
    return list(db.scalars(stmt))


def committee_of(db: Session, vote: Vote) -> list[StaffUser]:
    stmt = (
        select(StaffUser)
        .join(CommitteeMember, CommitteeMember.user_id == StaffUser.id)
        .where(CommitteeMember.vote_id == vote.id)
        .order_by(StaffUser.name, StaffUser.email)
    )
    return list(db.scalars(stmt))


def documents_of(db: Session, vote: Vote) -> dict[str, VoteDocument]:
    """Language -> document (without the PDF's bytes)."""
    stmt = select(VoteDocument).where(VoteDocument.vote_id == vote.id)
    return {d.language: d for d in db.scalars(stmt)}


def full_text(db: Session, vote_id: uuid.UUID, language: str) -> tuple[bytes, VoteDocument]:
    stmt = (
        select(VoteDocument)
        .where(VoteDocument.vote_id == vote_id, VoteDocument.language == language)
        .options(undefer(VoteDocument.full_text))
    )
    document = db.scalars(stmt).first()
    if document is None or not document.full_text_size:
        raise NotFound()
    data = document.full_text
    assert data is not None
    return data, document


def rule_of(vote: Vote) -> EligibilityRule | None:
    """The stored eligibility rule, as rosters.eligibility evaluates it (none for an offer
    decision, whose electorate is a constituency: ``constituency_of``)."""
    if vote.cutoff is None or not vote.eligibility or "units" not in vote.eligibility:
        return None
    params = vote.eligibility
    return EligibilityRule(
        cutoff=vote.cutoff,
        unit_ids=frozenset(uuid.UUID(u) for u in params["units"]),
        membership=frozenset(params["membership"]),
        good_standing=bool(params["good_standing"]),
        employment=frozenset(params["employment"]),
        joined_days_before=params.get("joined_days_before"),
    )


def constituency_of(vote: Vote) -> uuid.UUID | None:
    """An offer decision's electorate: the constituency whose criteria are frozen."""
    if vote.kind != VoteKind.OFFER_DECISION or vote.cutoff is None or not vote.eligibility:
        return None
    found = vote.eligibility.get("constituency")
    return uuid.UUID(found) if found else None


def threshold_of(vote: Vote) -> Threshold:
    stored = vote.threshold or {}
    return Threshold(
        numerator=int(stored.get("numerator", 1)),
        denominator=int(stored.get("denominator", 2)),
        quorum_percent=stored.get("quorum_percent"),
        units=str(stored.get("units", "aggregate")),
        blank_counts=bool(stored.get("blank_counts", False)),
        merge_small_groups=bool(stored.get("merge_small_groups", False)),
    )


def missing_for_scheduling(db: Session, vote: Vote) -> list[str]:
    """What must be set before the vote can be scheduled (messages to translate)."""
    missing = []
    if vote.opens_at is None or vote.closes_at is None:
        missing.append(N_("Set the voting window."))
    if vote.kind == VoteKind.OFFER_DECISION:
        if constituency_of(vote) is None:
            missing.append(N_("Choose the constituency that decides and its cutoff date."))
    elif rule_of(vote) is None:
        missing.append(N_("Set the eligibility rule and its cutoff date."))
    for language in vote.languages:
        if not vote.question.get(language) or any(not o.labels.get(language) for o in vote.options):
            missing.append(N_("Write the question and every option in each ballot language."))
            break
    if not MIN_OPTIONS <= len(worded_options(vote)) <= MAX_OPTIONS:
        missing.append(N_("A question needs between 2 and 10 options."))
    docs = documents_of(db, vote)
    if vote.kind == VoteKind.RATIFICATION and any(
        language not in docs or not docs[language].summary_markdown for language in vote.languages
    ):
        missing.append(N_("Write the agreement's summary in each ballot language."))
    committee = len(committee_of(db, vote))
    if committee < vote.signatures_required:
        missing.append(N_("Choose the certifying committee: at least as many as must sign."))
    return missing


# -- changing a draft -------------------------------------------------------------------------


def within_years(value: date) -> bool:
    """Whether a date (or a time) is one a person means: see ``YEARS``."""
    return YEARS[0] <= value.year <= YEARS[1]


def saved_fields(vote: Vote, committee_ids: list[uuid.UUID]) -> VoteFields:
    """The vote's set-up as it is saved, with a new vote's defaults where nothing is yet: what
    the form shows, and what a change through the API starts from."""
    rule = vote.eligibility or {}
    return VoteFields(
        title=vote.title,
        question=dict(vote.question),
        options=[dict(o.labels) for o in worded_options(vote)],
        opens_at=vote.opens_at,
        closes_at=vote.closes_at,
        cutoff=vote.cutoff,
        unit_ids=frozenset(uuid.UUID(u) for u in rule.get("units", [])),
        membership=frozenset(rule.get("membership", DEFAULT_MEMBERSHIP)),
        good_standing=bool(rule.get("good_standing", True)),
        employment=frozenset(rule.get("employment", DEFAULT_EMPLOYMENT)),
        joined_days_before=rule.get("joined_days_before"),
        tally_grouping=vote.tally_grouping,
        threshold=threshold_of(vote),
        committee_ids=frozenset(committee_ids),
        signatures_required=vote.signatures_required,
        second_factor=vote.second_factor,
        mail_letters=vote.mail_letters,
        allow_blank=vote.allow_blank,
        constituency_id=uuid.UUID(rule["constituency"]) if rule.get("constituency") else None,
    )


def worded_options(vote: Vote) -> list[VoteOption]:
    """The options staff word, in ballot order: all but the blank one."""
    return [o for o in vote.options if o.key != BLANK]


def _require_actor(actor: StaffUser | None, actor_label: str | None) -> None:
    """Every change to a vote is recorded with who made it: a staff user, or the label of the
    API token that made it (``ratify.api.services.actor_label``)."""
    if actor is None and not actor_label:
        raise ValueError("a change to a vote needs a staff user or an actor label")


def _utc(moment: datetime | None) -> datetime:
    """A checked time in UTC, as stored and shown back (it may come with any offset)."""
    assert moment is not None and moment.tzinfo is not None
    return moment.astimezone(UTC)


def require_draft(vote: Vote) -> None:
    """Refuse (409) a change to a vote that is no longer a draft."""
    _require(vote, VoteStatus.DRAFT)


def _require(vote: Vote, *statuses: VoteStatus) -> None:
    if vote.status in statuses:
        if vote.status == VoteStatus.DRAFT and vote.freeze_job_id is not None:
            raise Conflict(
                N_("The voter list is being frozen. Wait until it is done (this page says).")
            )
        return
    if vote.status == VoteStatus.SCHEDULED:
        raise Conflict(
            N_("This vote is scheduled: its voter list is frozen. Return it to draft to change it.")
        )
    if vote.status == VoteStatus.OPEN:
        raise Conflict(
            N_(
                "This vote is open: its question, documents, rule and committee can no longer "
                "change."
            )
        )
    if vote.status == VoteStatus.CLOSED:
        raise Conflict(N_("This vote is closed."))
    raise Conflict(N_("This vote is still a draft."))


def create_vote(
    db: Session,
    org: Organization,
    *,
    actor: StaffUser | None,
    actor_label: str | None = None,
    kind: VoteKind,
    title: str,
    languages: list[str],
    options: list[dict[str, str]] | None = None,
    offer_id: uuid.UUID | None = None,
    constituency_id: uuid.UUID | None = None,
) -> Vote:
    """A draft with the fixed Yes/No options of a ratification or an offer decision (or none
    yet for a question), or with the ``options`` given (language -> wording, in ballot
    order). An offer decision (``community.decision``) names its offer and constituency."""
    _require_actor(actor, actor_label)
    if kind == VoteKind.OFFER_DECISION:
        if offer_id is None:
            raise BadRequest(N_("An offer decision is put to a vote from its offer."))
    else:
        rosters.require_union(org)
    errors: dict[str, str] = {}
    if not title:
        errors["title"] = N_("Give the vote a title.")
    elif len(title) > 200:
        errors["title"] = N_("Use at most 200 characters.")
    chosen = [lang for lang in LANGUAGES if lang in languages]
    if not chosen:
        errors["languages"] = N_("Choose at least one language for the ballot.")
    elif options is not None:
        errors.update(check_options(kind, chosen, options))
    if errors:
        raise VoteInvalid(errors)
    vote = Vote(
        id=uuid.uuid4(),
        organization_id=org.id,
        kind=kind,
        status=VoteStatus.DRAFT,
        title=title,
        languages=chosen,
        question=(
            {lang: DEFAULT_QUESTION[lang] for lang in chosen}
            if kind == VoteKind.RATIFICATION
            else {lang: DEFAULT_OFFER_QUESTION[lang] for lang in chosen}
            if kind == VoteKind.OFFER_DECISION
            else {}
        ),
        threshold=Threshold().stored(),
        created_by_id=actor.id if actor else None,
        offer_id=offer_id,
    )
    if kind == VoteKind.OFFER_DECISION:
        vote.second_factor = SecondFactor.PHONE_LAST4
        if constituency_id is not None:
            vote.eligibility = {"constituency": str(constituency_id)}
    db.add(vote)
    if kind in YES_NO_KINDS:
        fixed = RATIFICATION_OPTIONS if kind == VoteKind.RATIFICATION else OFFER_OPTIONS
        for position, (key, labels) in enumerate(fixed):
            given = options[position] if options else labels
            db.add(
                VoteOption(
                    vote_id=vote.id,
                    position=position,
                    key=key,
                    labels={lang: given[lang] for lang in chosen},
                )
            )
    else:
        for position, labels in enumerate(options or []):
            db.add(
                VoteOption(
                    vote_id=vote.id,
                    position=position,
                    key=str(position + 1),
                    labels={lang: labels[lang] for lang in chosen},
                )
            )
    db.flush()
    data: dict[str, Any] = {"kind": kind.value, "title": title, "languages": chosen}
    if offer_id is not None:
        data["offer_id"] = str(offer_id)
    if options is not None:
        data["options"] = [{lang: labels[lang] for lang in chosen} for labels in options]
    audit.record(
        db,
        organization=org,
        actor=actor,
        actor_label=actor_label,
        action="vote.created",
        object_type="vote",
        object_id=vote.id,
        data=data,
    )
    return get_vote(db, org, vote.id)


def check_fields(db: Session, org: Organization, vote: Vote, fields: VoteFields) -> dict[str, str]:
    """Every problem with the set-up at once, keyed by form field."""
    errors = dict(fields.form_errors)
    if not fields.title:
        errors["title"] = N_("Give the vote a title.")
    elif len(fields.title) > 200:
        errors["title"] = N_("Use at most 200 characters.")
    for language in vote.languages:
        text = fields.question.get(language, "")
        if not text:
            errors[f"question_{language}"] = N_("Write the question.")
        elif len(text) > 1000:
            errors[f"question_{language}"] = N_("Use at most 1000 characters.")
    for name, value in check_options(vote.kind, vote.languages, fields.options).items():
        errors.setdefault(name, value)
    for name, moment in (("opens", fields.opens_at), ("closes", fields.closes_at)):
        if moment is not None and not within_years(moment):
            errors.setdefault(name, N_("Enter the date and time as YYYY-MM-DD HH:MM."))
    if "opens" in errors or "closes" in errors:
        pass  # a time that could not be read, or is out of range, is named already
    elif fields.opens_at is None or fields.closes_at is None:
        if fields.opens_at is None:
            errors["opens"] = N_("Enter when the vote opens.")
        if fields.closes_at is None:
            errors["closes"] = N_("Enter when the vote closes.")
    elif fields.closes_at <= fields.opens_at:
        errors["closes"] = N_("The vote must close after it opens.")
    elif fields.closes_at - fields.opens_at > MAX_WINDOW:
        errors["closes"] = N_("A vote can stay open for at most 90 days.")
    if fields.cutoff is None or not within_years(fields.cutoff):
        errors.setdefault("cutoff", N_("Enter the date as YYYY-MM-DD."))
    if vote.kind == VoteKind.OFFER_DECISION:
        from ratify.community.models import Constituency

        found = fields.constituency_id and db.scalar(
            select(Constituency.id).where(
                Constituency.id == fields.constituency_id,
                Constituency.organization_id == org.id,
            )
        )
        if not found:
            errors["constituency"] = N_("Choose the constituency that decides.")
        if fields.tally_grouping != TallyGrouping.AGGREGATE:
            errors["tally_grouping"] = N_("A constituency's decision is counted all together.")
    else:
        units = {u.id for u in rosters.list_units(db, org)}
        if not fields.unit_ids or not fields.unit_ids <= units:
            errors["units"] = N_("Choose at least one bargaining unit of this organization.")
        if not fields.membership or not fields.membership <= set(MEMBERSHIP_CHOICES):
            errors["membership"] = N_("Choose at least one membership status.")
        if not fields.employment or not fields.employment <= set(EMPLOYMENT_CHOICES):
            errors["employment"] = N_("Choose at least one employment status.")
        joined = fields.joined_days_before
        if joined is not None and not 0 <= joined <= MAX_JOINED_DAYS:
            errors.setdefault("joined_days", N_("Enter a number of days."))

    candidates = {u.id for u in committee_candidates(db, org)}
    if not fields.committee_ids <= candidates:
        errors["committee"] = N_("Only staff with the election committee role can certify.")
    if not 1 <= fields.signatures_required <= 20:
        errors["signatures_required"] = N_("Enter a number from 1 to 20.")
    elif fields.committee_ids and fields.signatures_required > len(fields.committee_ids):
        errors["signatures_required"] = N_(
            "More signatures are required than there are committee members."
        )
    if fields.second_factor == SecondFactor.POSTAL_CODE and fields.mail_letters:
        errors["second_factor"] = N_(
            "The postal code shows through a letter's envelope window: choose another second "
            "factor when letters are mailed."
        )
    share = (fields.threshold.numerator, fields.threshold.denominator)
    if share not in FRACTIONS.values():
        errors.setdefault(
            "threshold_fraction", N_("Choose what share of the votes cast must say yes.")
        )
    quorum = fields.threshold.quorum_percent
    if quorum is not None and not 1 <= quorum <= 100:
        errors["quorum_percent"] = N_("Enter a percentage from 1 to 100, or leave it empty.")
    if fields.threshold.blank_counts and not fields.allow_blank:
        errors["blank_counts"] = N_("Blank ballots can count only when the ballot offers them.")
    return errors


def check_options(
    kind: VoteKind, languages: list[str], options: list[dict[str, str]]
) -> dict[str, str]:
    """The problems with a ballot's options (language -> wording, in ballot order), keyed by
    form field: a question's are named per language, a ratification's one by one."""
    errors: dict[str, str] = {}
    if kind == VoteKind.QUESTION and not (MIN_OPTIONS <= len(options) <= MAX_OPTIONS):
        for language in languages:
            errors.setdefault(
                f"options_{language}", N_("Write between 2 and 10 options, one a line.")
            )
    if kind in YES_NO_KINDS and len(options) != 2:
        errors["options"] = N_("A ratification has exactly two options.")
    for position, labels in enumerate(options):
        for language in languages:
            label = labels.get(language, "")
            name = (
                f"option_{position}_{language}" if kind in YES_NO_KINDS else f"options_{language}"
            )
            if not label:
                errors.setdefault(name, N_("Write every option in each ballot language."))
            elif len(label) > 200:
                errors.setdefault(name, N_("Use at most 200 characters for an option."))
        for language in languages:
            wording = [o.get(language, "").casefold() for o in options]
            if len(set(wording)) != len(wording):
                key = "options" if kind in YES_NO_KINDS else f"options_{language}"
                errors.setdefault(key, N_("Two options have the same wording."))
    return errors


def update_vote(
    db: Session,
    org: Organization,
    vote: Vote,
    *,
    actor: StaffUser | None,
    actor_label: str | None = None,
    fields: VoteFields,
) -> None:
    """Save the set-up of a draft: all of it, or nothing (every problem reported at once)."""
    _require_actor(actor, actor_label)
    _require(vote, VoteStatus.DRAFT)
    errors = check_fields(db, org, vote, fields)
    if errors:
        raise VoteInvalid(errors)
    vote.title = fields.title
    vote.question = {lang: fields.question[lang] for lang in vote.languages}
    vote.opens_at = _utc(fields.opens_at)
    vote.closes_at = _utc(fields.closes_at)
    vote.cutoff = fields.cutoff
    if vote.kind == VoteKind.OFFER_DECISION:
        vote.eligibility = {"constituency": str(fields.constituency_id)}
    else:
        vote.eligibility = {
            "units": sorted(str(u) for u in fields.unit_ids),
            "membership": sorted(fields.membership),
            "good_standing": fields.good_standing,
            "employment": sorted(fields.employment),
            "joined_days_before": fields.joined_days_before,
        }
    vote.tally_grouping = fields.tally_grouping
    vote.threshold = fields.threshold.stored()
    vote.signatures_required = fields.signatures_required
    vote.second_factor = fields.second_factor
    vote.mail_letters = fields.mail_letters
    vote.updated_at = utcnow()
    vote.allow_blank = fields.allow_blank
    if vote.kind in YES_NO_KINDS:
        for option, labels in zip(worded_options(vote), fields.options, strict=True):
            option.labels = {lang: labels[lang] for lang in vote.languages}
    else:
        vote.options.clear()
        db.flush()  # the old options go before new ones take their keys
        for position, labels in enumerate(fields.options):
            vote.options.append(
                VoteOption(
                    vote_id=vote.id,
                    position=position,
                    key=str(position + 1),
                    labels={lang: labels[lang] for lang in vote.languages},
                )
            )
    _keep_blank_option(vote)
    current = {
        m.user_id: m
        for m in db.scalars(select(CommitteeMember).where(CommitteeMember.vote_id == vote.id))
    }
    for user_id, member in current.items():
        if user_id not in fields.committee_ids:
            db.delete(member)
    for user_id in fields.committee_ids - set(current):
        db.add(CommitteeMember(vote_id=vote.id, user_id=user_id))
    db.flush()
    audit.record(
        db,
        organization=org,
        actor=actor,
        actor_label=actor_label,
        action="vote.updated",
        object_type="vote",
        object_id=vote.id,
        data=describe(vote, sorted(str(u) for u in fields.committee_ids)),
    )


def _keep_blank_option(vote: Vote) -> None:
    """The blank option on the ballot, last, exactly when the set-up allows blank ballots:
    an ordinary option to the ballot pages and to casting (its key is ``BLANK``)."""
    blank = next((o for o in vote.options if o.key == BLANK), None)
    if vote.allow_blank and blank is None:
        vote.options.append(
            VoteOption(
                vote_id=vote.id,
                position=len(vote.options),
                key=BLANK,
                labels={lang: BLANK_LABELS[lang] for lang in vote.languages},
            )
        )
    elif blank is not None and not vote.allow_blank:
        vote.options.remove(blank)


def describe(vote: Vote, committee: list[str]) -> dict[str, Any]:
    """The set-up as the audit log keeps it."""
    return {
        "title": vote.title,
        "question": vote.question,
        "options": [{"key": o.key, "labels": o.labels} for o in vote.options],
        "opens_at": vote.opens_at.isoformat() if vote.opens_at else None,
        "closes_at": vote.closes_at.isoformat() if vote.closes_at else None,
        "cutoff": vote.cutoff.isoformat() if vote.cutoff else None,
        "eligibility": vote.eligibility,
        "tally_grouping": vote.tally_grouping.value,
        "threshold": vote.threshold,
        "committee": committee,
        "signatures_required": vote.signatures_required,
        "second_factor": vote.second_factor.value,
        "mail_letters": vote.mail_letters,
    }


def save_document(
    db: Session,
    org: Organization,
    vote: Vote,
    *,
    actor: StaffUser,
    language: str,
    summary: str,
    pdf: bytes | None,
    pdf_name: str = "",
) -> VoteDocument:
    """The summary (always) and, when one is sent, a new full-text PDF for one language."""
    _require(vote, VoteStatus.DRAFT)
    if language not in vote.languages:
        raise NotFound()
    text = documents.check_summary(summary)
    if pdf is not None:
        documents.check_pdf(pdf)
    document = documents_of(db, vote).get(language)
    if document is None:
        document = VoteDocument(vote_id=vote.id, language=language)
        db.add(document)
    document.summary_markdown = text
    document.summary_html = documents.render_summary(text)
    data: dict[str, Any] = {"language": language, "summary_chars": len(text)}
    if pdf is not None:
        document.full_text = pdf
        document.full_text_name = pdf_name[:255]
        document.full_text_size = len(pdf)
        document.full_text_digest = hashlib.sha256(pdf).hexdigest()
        data.update(full_text_sha256=document.full_text_digest, full_text_bytes=len(pdf))
    document.updated_at = utcnow()
    db.flush()
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="vote.document_saved",
        object_type="vote",
        object_id=vote.id,
        data=data,
    )
    return document


# -- the status machine ------------------------------------------------------------------------


def _check_schedulable(db: Session, vote: Vote) -> None:
    _require(vote, VoteStatus.DRAFT)
    missing = missing_for_scheduling(db, vote)
    if missing:
        raise BadRequest(missing[0])
    if vote.offer_id is not None:
        from ratify.community.models import Offer, OfferStatus

        offer = db.get(Offer, vote.offer_id)
        if offer is None or offer.status != OfferStatus.VOTING:
            raise Conflict(
                N_("The offer was withdrawn or superseded: this vote can no longer be scheduled.")
            )
        org = db.get_one(Organization, vote.organization_id)
        if vote.cutoff is not None and vote.cutoff > org_today(org):
            raise BadRequest(
                N_("The cutoff date is still to come: who meets the criteria is known by then.")
            )
    assert vote.closes_at is not None
    if vote.closes_at <= utcnow():
        raise BadRequest(N_("The window has already closed: set a later closing time."))


def request_schedule(
    db: Session,
    org: Organization,
    vote: Vote,
    *,
    actor: StaffUser,
    secret_key: str,
    in_request_members: int,
) -> bool:
    """Schedule the vote now (True) when the organization has at most ``in_request_members``
    members; otherwise check what can be checked at once and leave the freezing to
    ``ratify worker`` (False): a 300,000-member list takes longer than a request may. The
    vote stays a draft, which nobody can change, until the job has scheduled it or said why
    it could not (``freeze_error``)."""
    from ratify.jobs import services as jobs
    from ratify.rosters.models import Member

    settle_freeze(db, vote)
    _check_schedulable(db, vote)
    members = db.scalar(
        select(func.count()).select_from(Member).where(Member.organization_id == org.id)
    )
    if (members or 0) <= in_request_members:
        schedule(db, org, vote, actor=actor, secret_key=secret_key)
        return True
    job = jobs.enqueue(
        db,
        FREEZE_TASK,
        {"vote_id": str(vote.id), "actor_id": str(actor.id)},
        organization_id=org.id,
        max_attempts=FREEZE_ATTEMPTS,
    )
    vote.freeze_job_id = job.id
    vote.freeze_error = ""
    db.flush()
    return False


FREEZE_TASK = "votes.freeze"
FREEZE_ATTEMPTS = 3
FREEZE_FAILED = N_(
    "The worker could not freeze the voter list. Nothing was changed. Try again, or tell "
    "whoever runs Ratify."
)


def freeze_job(db: Session, job: Job, *, secret_key: str) -> None:
    """The worker's part of ``request_schedule``, in the job's own transaction: schedule the
    vote (one transaction: the whole list or none of it) or record why not. A refusal (the
    window closed meanwhile, say) or a last failed attempt leaves the vote a draft with the
    reason on its page; an earlier failure is raised, so the worker tries again later."""
    vote = db.get(
        Vote,
        uuid.UUID(job.payload["vote_id"]),
        with_for_update=True,
        options=[selectinload(Vote.options)],
    )
    if vote is None or vote.freeze_job_id != job.id:
        return  # moved on: a later request, or the vote is gone
    vote.freeze_job_id = None
    org = db.get_one(Organization, vote.organization_id)
    actor = db.get(StaffUser, uuid.UUID(job.payload["actor_id"]))
    try:
        with db.begin_nested():
            if actor is None:
                raise BadRequest(FREEZE_FAILED)
            schedule(db, org, vote, actor=actor, secret_key=secret_key)
    except RatifyError as exc:
        vote.freeze_error = exc.message % exc.params if exc.params else exc.message
    except Exception:
        if job.attempts < job.max_attempts:
            raise
        vote.freeze_error = FREEZE_FAILED
    db.flush()


def freezing(db: Session, vote: Vote) -> Job | None:
    """The job freezing the vote's list, while one is queued or running."""
    settle_freeze(db, vote)
    if vote.freeze_job_id is None:
        return None
    return db.get(Job, vote.freeze_job_id)


def settle_freeze(db: Session, vote: Vote) -> None:
    """A freeze whose job ended without saying so (its worker killed on the last attempt)
    no longer holds the vote: it is a draft again, with the reason on its page."""
    if vote.freeze_job_id is None:
        return
    job = db.get(Job, vote.freeze_job_id)
    if job is None or job.status in (JobStatus.DONE, JobStatus.DEAD):
        vote.freeze_job_id = None
        vote.freeze_error = vote.freeze_error or FREEZE_FAILED
        db.flush()


def schedule(
    db: Session, org: Organization, vote: Vote, *, actor: StaffUser, secret_key: str
) -> None:
    """Fix the set-up and freeze the voter list; the vote then opens by itself."""
    from ratify.votes import voters

    _check_schedulable(db, vote)
    now = utcnow()
    vote.freeze_error = ""
    _pin_constituency(db, org, vote)
    summary = voters.freeze(db, org, vote, secret_key=secret_key)
    if _move(db, vote, VoteStatus.DRAFT, VoteStatus.SCHEDULED, scheduled_at=now) != 1:
        raise Conflict()
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="vote.scheduled",
        object_type="vote",
        object_id=vote.id,
        data={
            **describe(vote, [str(u.id) for u in committee_of(db, vote)]),
            **summary,
        },
    )


def _pin_constituency(db: Session, org: Organization, vote: Vote) -> None:
    """An offer decision's rule, as the list is frozen: the constituency's criteria and its
    approval rule copied in, so the audit log, the certificate's record and the list agree on
    what was applied whatever the constituency says later."""
    found = constituency_of(vote)
    if found is None:
        return
    from ratify.community import constituencies

    constituency = constituencies.get_constituency(db, org, found)
    vote.eligibility = {
        "constituency": str(constituency.id),
        "constituency_name": constituency.name,
        "criteria": dict(constituency.criteria or {}),
        "approval_required": constituency.approval_required,
    }


def unschedule(db: Session, org: Organization, vote: Vote, *, actor: StaffUser) -> None:
    """Back to draft before opening: the frozen list is dropped (it is frozen again later)."""
    from ratify.votes import voters

    _require(vote, VoteStatus.SCHEDULED)
    if links_given_out(db, vote):
        raise Conflict(
            N_("Links to this vote have been shown or exported for letters: returning it to "
               "draft would stop them working. Reissue single links instead.")
        )  # fmt: skip
    voters.drop(db, vote)
    if vote.kind == VoteKind.OFFER_DECISION and vote.eligibility:
        vote.eligibility = {"constituency": vote.eligibility["constituency"]}  # pinned again
    if _move(db, vote, VoteStatus.SCHEDULED, VoteStatus.DRAFT, scheduled_at=None) != 1:
        raise Conflict()
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="vote.unscheduled",
        object_type="vote",
        object_id=vote.id,
    )


LINKS_GIVEN_OUT = ("vote.link_shown", "vote.mail_house_exported")


def links_given_out(db: Session, vote: Vote) -> bool:
    """Whether any voter's link has left Ratify (shown to staff or exported for letters), as
    the audit log records: dropping the voter list would then break links people hold."""
    stmt = select(AuditEvent.id).where(
        AuditEvent.organization_id == vote.organization_id,
        AuditEvent.object_type == "vote",
        AuditEvent.object_id == str(vote.id),
        AuditEvent.action.in_(LINKS_GIVEN_OUT),
    )
    return db.execute(stmt.limit(1)).first() is not None


def _move(db: Session, vote: Vote, before: VoteStatus, after: VoteStatus, **values: Any) -> int:
    """A conditional update, so that of two processes moving one vote only one does (and
    records it)."""
    result = db.execute(
        update(Vote)
        .where(Vote.id == vote.id, Vote.status == before)
        .values(status=after, **values)
        .execution_options(synchronize_session=False)
    )
    moved = int(getattr(result, "rowcount", 0))
    if moved:
        vote.status = after
        for name, value in values.items():
            setattr(vote, name, value)
    else:
        # Another process moved it first (its commit is what this update waited for): read
        # the status it left, so this request shows and acts on the vote as it now is.
        db.refresh(vote, ["status", "closes_at", *_STAMPS])
    return moved


_STAMPS = ("scheduled_at", "opened_at", "closed_at")


def advance(db: Session, org: Organization, vote: Vote, now: datetime | None = None) -> None:
    """Open or close the vote when its window's edge has passed. Run by the worker's tick and
    at the start of each request to the vote's pages, so no page shows a stale status."""
    from ratify.votes import voters

    now = now or utcnow()
    if (
        vote.status == VoteStatus.SCHEDULED
        and vote.opens_at is not None
        and vote.opens_at <= now
        and _move(db, vote, VoteStatus.SCHEDULED, VoteStatus.OPEN, opened_at=now) == 1
    ):
        summary = voters.at_opening(db, vote)
        vote.eligible_counts = voters.eligible_by_group(db, vote)
        db.flush()
        audit.record(
            db,
            organization=org,
            actor=None,
            action="vote.opened",
            object_type="vote",
            object_id=vote.id,
            data=summary,
        )
    if (
        vote.status == VoteStatus.OPEN
        and vote.closes_at is not None
        and vote.closes_at <= now
        and _move(db, vote, VoteStatus.OPEN, VoteStatus.CLOSED, closed_at=now) == 1
    ):
        audit.record(
            db,
            organization=org,
            actor=None,
            action="vote.closed",
            object_type="vote",
            object_id=vote.id,
            data={"closes_at": vote.closes_at.isoformat()},
        )


def advance_due(db: Session, now: datetime | None = None) -> int:
    """Every vote whose window edge has passed, across organizations (the worker's tick)."""
    now = now or utcnow()
    stmt = (
        select(Vote, Organization)
        .join(Organization, Organization.id == Vote.organization_id)
        .where(
            or_(
                (Vote.status == VoteStatus.SCHEDULED) & (Vote.opens_at <= now),
                (Vote.status == VoteStatus.OPEN) & (Vote.closes_at <= now),
            )
        )
        .options(selectinload(Vote.options))
    )
    moved = 0
    for vote, org in db.execute(stmt).all():
        advance(db, org, vote, now)
        moved += 1
    return moved


def extend(
    db: Session,
    org: Organization,
    vote: Vote,
    *,
    actor: StaffUser,
    closes_at: datetime | None,
    reason: str,
) -> None:
    """A later close for an open vote (after an outage, say): an administrator's decision,
    with the reason in the audit log."""
    _require(vote, VoteStatus.OPEN)
    assert vote.closes_at is not None and vote.opens_at is not None
    errors: dict[str, str] = {}
    if closes_at is None:
        errors["closes"] = N_("Enter when the vote closes.")
    elif closes_at <= vote.closes_at:
        errors["closes"] = N_("An extension closes the vote later than now planned.")
    elif closes_at - vote.opens_at > MAX_WINDOW:
        errors["closes"] = N_("A vote can stay open for at most 90 days.")
    if not reason.strip():
        errors["reason"] = N_("Say why the window is extended.")
    elif len(reason) > 1000:
        errors["reason"] = N_("Use at most 1000 characters.")
    if errors:
        raise VoteInvalid(errors)
    assert closes_at is not None
    before = vote.closes_at
    vote.closes_at = closes_at
    db.flush()
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="vote.extended",
        object_type="vote",
        object_id=vote.id,
        data={
            "closes_at_before": before.isoformat(),
            "closes_at": closes_at.isoformat(),
            "reason": reason.strip(),
        },
    )


# -- what members see --------------------------------------------------------------------------


@dataclass(frozen=True)
class BallotOption:
    key: str
    label: str
    # What the form sends for this option: its position in two digits, the same length for
    # every option, so a request's size does not tell an onlooker the choice; and ``pad``,
    # spaces that make every option's review page the same length (DESIGN.md §4).
    mark: str = ""
    pad: str = ""


@dataclass(frozen=True)
class Ballot:
    """One language's ballot, as the member's page and the staff preview both show it."""

    vote_id: uuid.UUID
    title: str
    kind: VoteKind
    language: str
    question: str
    options: list[BallotOption]
    summary_html: str
    has_full_text: bool
    closes_at: datetime | None

    def option(self, mark: str) -> BallotOption | None:
        """The option a form's ``choice`` (its mark) names, or None."""
        return next((o for o in self.options if o.mark == mark), None)


def ballot(db: Session, vote: Vote, language: str) -> Ballot:
    if language not in vote.languages:
        raise NotFound()
    return ballot_in(vote, documents_of(db, vote).get(language), language)


def ballot_in(vote: Vote, document: VoteDocument | None, language: str) -> Ballot:
    """One language's ballot from the vote (its options loaded) and that language's document."""
    return Ballot(
        vote_id=vote.id,
        title=vote.title,
        kind=vote.kind,
        language=language,
        question=vote.question.get(language, ""),
        options=_marked([(o.key, o.labels.get(language, "")) for o in vote.options]),
        summary_html=document.summary_html if document else "",
        has_full_text=bool(document and document.full_text_size),
        closes_at=vote.closes_at,
    )


def option_marks(vote: Vote) -> dict[str, str]:
    """Each option's mark (what the ballot form sends) -> its key."""
    return {_mark(n): option.key for n, option in enumerate(vote.options, 1)}


def _mark(position: int) -> str:
    return f"{position:02d}"


def _marked(options: list[tuple[str, str]]) -> list[BallotOption]:
    sizes = [len(str(escape(label)).encode()) for _, label in options]
    widest = max(sizes, default=0)
    return [
        BallotOption(key, label, mark=_mark(n), pad=" " * (widest - size))
        for n, ((key, label), size) in enumerate(zip(options, sizes, strict=True), 1)
    ]


def unit_codes(db: Session, org: Organization, unit_ids: list[str]) -> list[str]:
    ids = [uuid.UUID(u) for u in unit_ids]
    stmt = select(BargainingUnit.code).where(
        BargainingUnit.organization_id == org.id, BargainingUnit.id.in_(ids)
    )
    return sorted(db.scalars(stmt))
