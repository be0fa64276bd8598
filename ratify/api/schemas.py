"""Request and response bodies of the JSON API, as pydantic models: the same classes validate
what comes in, shape what goes out and (later) write the OpenAPI document."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, Json

from ratify.rosters.models import EmploymentStatus, MembershipStatus
from ratify.votes.models import SecondFactor, TallyGrouping, VoteKind
from ratify.votes.services import DEFAULT_EMPLOYMENT, DEFAULT_MEMBERSHIP

# NUL and the other C0 controls (tab, newline and carriage return are fine), as the forms
# refuse them: PostgreSQL cannot store NUL, and the others are never meant.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _no_controls(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("holds control characters that cannot be stored")
    return value


Text = Annotated[str, AfterValidator(_no_controls)]


class Input(BaseModel):
    """A request body or query: unknown fields are refused, so a typo is not silently lost."""

    model_config = ConfigDict(extra="forbid")


class Query(BaseModel):
    """Query parameters: unknown ones are ignored, as on any web page."""

    model_config = ConfigDict(extra="ignore")


# -- errors --------------------------------------------------------------------------------------


class FieldError(BaseModel):
    index: int | None = Field(
        default=None, description="Position of the item in the request's list, from 0."
    )
    field: str
    message: str


class ErrorOut(BaseModel):
    error: int
    message: str
    request_id: str
    errors: list[FieldError] = []


# -- members -------------------------------------------------------------------------------------


class MembersQuery(Query):
    page: int = Field(default=1, ge=1, le=1_000_000)
    per_page: int = Field(default=50, ge=1, le=500)
    q: Text = Field(default="", max_length=200, description="Name, member number, email or phone.")


class ContactOut(BaseModel):
    """Contact details: only for roles that may read them."""

    email: str
    phone: str
    preferred_language: str
    address_line1: str
    address_line2: str
    city: str
    region: str
    postal_code: str
    country: str
    birth_date: date | None


class MemberOut(BaseModel):
    id: uuid.UUID
    member_number: str
    first_name: str
    last_name: str
    worksite: str
    classification: str
    hire_date: date | None
    join_date: date | None
    contact: ContactOut | None = Field(
        description="Null for roles that may not read contact details."
    )


class UnitCount(BaseModel):
    code: str
    name: str
    members: int


class MemberList(BaseModel):
    total: int
    page: int
    per_page: int
    pages: int
    units: list[UnitCount] = Field(description="Members in each bargaining unit today.")
    members: list[MemberOut] | None = Field(
        description="Null for roles that see counts only (observers)."
    )


class MemberIn(Input):
    """One member of a batch. Give the same fields for every member; a field left out of the
    whole batch changes nothing, and an empty one (or null) clears it."""

    member_number: Text = Field(pattern=r"\S", description="The union's number for the member.")
    first_name: Text | None = None
    last_name: Text | None = None
    email: Text | None = None
    phone: Text | None = None
    preferred_language: Text | None = None
    address_line1: Text | None = None
    address_line2: Text | None = None
    city: Text | None = None
    region: Text | None = None
    postal_code: Text | None = None
    country: Text | None = None
    worksite: Text | None = None
    classification: Text | None = None
    hire_date: date | None = None
    join_date: date | None = None
    birth_date: date | None = None
    unit: Text | None = Field(default=None, description="A bargaining unit's code.")
    membership_status: MembershipStatus | None = None
    employment_status: EmploymentStatus | None = None

    def as_row(self) -> dict[str, str]:
        """The fields this member gives, as the cells of a roster file."""
        row: dict[str, str] = {}
        for name in self.model_fields_set:
            value: Any = getattr(self, name)
            if value is None:
                row[name] = ""
            elif isinstance(value, date):
                row[name] = value.isoformat()
            elif isinstance(value, MembershipStatus | EmploymentStatus):
                row[name] = value.value
            else:
                row[name] = str(value)
        return row


MAX_BATCH = 20_000


class MemberBatchIn(Input):
    effective_date: date | None = Field(
        default=None, description="When the changes take effect; today if not given."
    )
    members: list[MemberIn] = Field(min_length=1, max_length=MAX_BATCH)


class ImportOut(BaseModel):
    """One applied import, as the import history keeps it."""

    id: uuid.UUID
    file_name: str
    scope: str
    unit_id: uuid.UUID | None
    effective_date: date
    mapping: dict[str, str]
    counts: dict[str, int]
    actor_label: str
    created_at: datetime


class Counts(BaseModel):
    rows: int
    new: int
    changed: int
    leaving: int
    unchanged: int
    errors: int = Field(description="Rows with at least one error.")


class MemberBatchOut(BaseModel):
    counts: Counts
    roster_import: ImportOut | None = Field(
        description="Null when the batch changed nothing (and so nothing was recorded)."
    )


# -- roster imports ------------------------------------------------------------------------------


class ImportStartForm(Input):
    """The fields sent with the file (multipart/form-data)."""

    scope: Literal["unit", "unit_column", "update_only"]
    unit: Text | None = Field(default=None, description="The unit's code, for scope=unit.")
    effective_date: date | None = None
    source: Text = Field(default="", max_length=100)
    mapping: Json[dict[str, str]] | None = Field(
        default=None, description="Field name -> column header, as a JSON object."
    )


class MappingIn(Input):
    mapping: dict[Text, Text]


class RowErrorOut(BaseModel):
    row: int = Field(description="As a spreadsheet numbers it: the header is row 1.")
    column: str
    message: str


class PreviewOut(BaseModel):
    counts: Counts
    needs_confirmation: bool = Field(
        description="More than a fifth of the units' members would leave: apply with "
        "confirm_leaving."
    )
    errors: list[RowErrorOut] = Field(description="The first 1000 row errors.")


class UploadOut(BaseModel):
    id: uuid.UUID
    file_name: str
    scope: str
    unit_id: uuid.UUID | None
    effective_date: date
    source: str
    status: Literal["ready", "checking", "checked", "applying", "applied", "failed"] = Field(
        description="Large files are checked and applied by the worker: poll until "
        "`checked` (the preview is ready) or `applied`."
    )
    row_count: int
    rows_done: int = Field(description="Rows checked so far, while `checking`.")
    headers: list[str]
    mapping: dict[str, str]
    version: str | None = Field(description="Names this preview; send it back to apply it.")
    preview: PreviewOut | None = Field(description="Null once applied, or while unreadable.")
    problem: str | None = Field(description="Why there is no preview yet (a mapping to fix).")
    roster_import: ImportOut | None


class ApplyIn(Input):
    confirm_leaving: bool = False
    version: str | None = Field(
        default=None,
        max_length=64,
        description="The upload's `version` from the preview you checked: the apply is refused "
        "(409) if applying would now do something else (the mapping or the roster changed).",
    )


# -- eligibility ---------------------------------------------------------------------------------


class ManualDecisionIn(Input):
    member_number: Text
    reason: Text = Field(min_length=1, max_length=500)


class EligibilityIn(Input):
    cutoff: date
    units: list[Text] = Field(min_length=1, max_length=500, description="Unit codes.")
    membership: list[MembershipStatus] = [MembershipStatus.MEMBER]
    good_standing: bool = True
    employment: list[EmploymentStatus] = [EmploymentStatus.ACTIVE, EmploymentStatus.ON_LEAVE]
    joined_days_before: int | None = Field(default=None, ge=0, le=36_500)
    includes: list[ManualDecisionIn] = Field(default=[], max_length=10_000)
    excludes: list[ManualDecisionIn] = Field(default=[], max_length=10_000)
    page: int = Field(default=1, ge=1, le=1_000_000)
    per_page: int = Field(default=100, ge=1, le=1000)


class UnitDecisions(BaseModel):
    code: str
    eligible: int
    not_eligible: int


class DecisionOut(BaseModel):
    member_number: str
    name: str
    units: list[str]
    eligible: bool
    reasons: list[str]
    note: str


class DecisionPage(BaseModel):
    total: int
    page: int
    per_page: int
    pages: int
    items: list[DecisionOut]


class EligibilityOut(BaseModel):
    cutoff: date
    eligible: int
    not_eligible: int
    excluded_by_reason: dict[str, int] = Field(description="Each member counted once.")
    reasons: dict[str, str] = Field(description="What each reason code means.")
    units: list[UnitDecisions]
    decisions: DecisionPage | None = Field(
        description="Null for roles that may not read members' names."
    )


# -- votes ---------------------------------------------------------------------------------------

Language = Literal["en", "es"]  # a ballot language: settings.LANGUAGES (a test keeps them equal)


class OptionIn(Input):
    labels: dict[Language, Text] = Field(
        description="Language -> wording, in each ballot language."
    )


class VoteRuleIn(Input):
    """Who may vote: the eligibility rule, evaluated on the cutoff date when the vote is
    scheduled (its voter list is then frozen). Given, it replaces the saved rule whole."""

    cutoff: date
    units: list[Text] = Field(max_length=500, description="Bargaining units' codes.")
    membership: list[MembershipStatus] = [MembershipStatus(m) for m in DEFAULT_MEMBERSHIP]
    good_standing: bool = True
    employment: list[EmploymentStatus] = [EmploymentStatus(e) for e in DEFAULT_EMPLOYMENT]
    joined_days_before: int | None = Field(
        default=None, description="Joined at least this many days before the cutoff."
    )


class ThresholdIn(Input):
    """What passes: more than half (1/2), or at least numerator/denominator (3/5, 2/3 or
    3/4), of the votes cast, with an optional quorum. Given, it replaces the saved threshold
    whole."""

    numerator: int = 1
    denominator: int = 2
    quorum_percent: int | None = Field(
        default=None, description="Percent of eligible voters who must vote, or null for none."
    )
    units: Literal["aggregate", "every_unit"] = Field(
        default="aggregate", description="every_unit: each bargaining unit must pass too."
    )
    blank_counts: bool = Field(
        default=False,
        description="Blank ballots count in the votes cast (so against); needs allow_blank.",
    )
    merge_small_groups: bool = Field(
        default=False,
        description="A tally group of fewer than 5 ballots is counted in the aggregate only, "
        "its own figures not shown.",
    )


class SetupFields(Input):
    """What a new draft and a change to a draft share."""

    question: dict[Language, Text] | None = Field(
        default=None, description="Language -> the question, in each ballot language."
    )
    options: list[OptionIn] | None = Field(
        default=None,
        max_length=50,
        description="In ballot order: a ratification's two (Yes, No), a question's 2 to 10.",
    )
    opens_at: AwareDatetime | None = Field(default=None, description="With its UTC offset.")
    closes_at: AwareDatetime | None = Field(
        default=None, description="With its UTC offset; at most 90 days after opening."
    )
    eligibility: VoteRuleIn | None = None
    tally_grouping: TallyGrouping | None = None
    threshold: ThresholdIn | None = None
    second_factor: SecondFactor | None = None
    mail_letters: bool | None = None
    allow_blank: bool | None = Field(
        default=None,
        description="The ballot offers a blank option last (key blank), not among options.",
    )
    committee: list[Text] | None = Field(
        default=None,
        max_length=100,
        description="Emails of the staff (with the election committee role) who certify.",
    )
    signatures_required: int | None = Field(
        default=None, description="How many of the committee must sign the certificate."
    )


class VoteSetupIn(SetupFields):
    """A change to a draft's set-up. The set-up is saved whole and checked as the set-up page
    checks it: the first time, give at least the window, the eligibility rule and (for a
    question) the question; afterwards a field left out (or null) keeps its saved value."""

    title: Text | None = None


class VoteCreateIn(SetupFields):
    """A new draft; with any set-up field but its options, its set-up is saved in the same
    call (all of it, or nothing: a refused set-up creates no vote either)."""

    kind: VoteKind
    title: Text
    languages: list[Language] = Field(max_length=10, description="The ballot's languages.")


class OptionOut(BaseModel):
    key: str = Field(description="What a ballot records: yes or no, or 1 to 10.")
    labels: dict[str, str]


class VoteRuleOut(BaseModel):
    cutoff: date
    units: list[str] = Field(description="Bargaining units' codes.")
    membership: list[str]
    good_standing: bool
    employment: list[str]
    joined_days_before: int | None


class ThresholdOut(BaseModel):
    numerator: int
    denominator: int
    quorum_percent: int | None
    units: str
    blank_counts: bool
    merge_small_groups: bool


class CommitteeMemberOut(BaseModel):
    name: str
    email: str | None = Field(description="Null for roles that may not set votes up.")


class VoteOut(BaseModel):
    id: uuid.UUID
    title: str
    kind: str
    status: str
    languages: list[str]
    opens_at: datetime | None
    closes_at: datetime | None


class VoteList(BaseModel):
    items: list[VoteOut]


class VoterListOut(BaseModel):
    """The frozen voter list (from scheduling on), in counts: never who, never how."""

    fingerprint: str | None = Field(description="SHA-256 of the sorted member numbers and groups.")
    eligible: int
    excluded: int
    challenged: int
    missing_second_factor: int
    groups: dict[str, int] = Field(description="Tally group -> eligible and challenged voters.")
    small_groups: list[str] = Field(description="Groups of fewer than 5 voters (they leak).")


class VoteDetailOut(VoteOut):
    question: dict[str, str]
    options: list[OptionOut] = Field(
        description="The worded options; with allow_blank the ballot also offers key blank."
    )
    allow_blank: bool
    eligibility: VoteRuleOut | None = Field(description="Null until the set-up is saved.")
    tally_grouping: str
    threshold: ThresholdOut
    second_factor: str
    mail_letters: bool
    committee: list[CommitteeMemberOut]
    signatures_required: int
    voter_list: VoterListOut | None = Field(description="Null while the vote is a draft.")


class GroupTurnoutOut(BaseModel):
    group: str
    eligible: int
    voted: int
    online: int
    paper_or_in_person: int


class HourOut(BaseModel):
    hour: datetime
    voted: int


class TurnoutOut(BaseModel):
    """Who has voted, never how: no count of choices (DESIGN.md §4 rule 3)."""

    eligible: int
    voted: int
    groups: list[GroupTurnoutOut]
    hourly: list[HourOut]


# -- results, the certificate and the election record (after the count) -------------------------


class OptionCountOut(BaseModel):
    option: str
    total: int
    online: int | None = Field(description="Null where it would tell a small channel's choices.")
    paper: int | None


class TallyDecisionOut(BaseModel):
    passed: bool
    reason: str = Field(
        description="passed, no_quorum, no_votes, tie, below_threshold (or unit_failed)."
    )
    option: str | None = Field(description="What was measured: yes, or a question's leader.")
    votes_for: int
    base: int = Field(description="The votes cast, as the rule counts them.")
    needed: int = Field(description="The fewest votes_for that pass, given the base.")
    tied: list[str]
    quorum_met: bool | None
    quorum_needed: int | None = Field(description="Ballots; null without a quorum rule.")


class FiguresOut(BaseModel):
    """One tally group's figures, or the aggregate's, or the merged small groups'."""

    group: str
    eligible: int
    ballots: int = Field(description="All ballots cast, blank ones included.")
    online_ballots: int
    paper_ballots: int
    blanks: int
    turnout_percent: float
    counts: list[OptionCountOut] = Field(description="Per option, in ballot order.")
    small: bool = Field(description="Fewer than 5 ballots (DESIGN.md rule 6).")
    small_channels: list[str]
    decision: TallyDecisionOut
    groups: list[str] = Field(description="The merged line's groups.")


class AppliedThresholdOut(BaseModel):
    kind: str
    numerator: int
    denominator: int
    quorum_percent: int | None
    units: str
    blank_counts: bool
    merge_small_groups: bool


class ExplanationOut(BaseModel):
    rule: str
    numerator: int
    denominator: int
    comparison: str = Field(description="more_than (a majority) or at_least (a fraction).")
    quorum_percent: int | None
    blank_counts: bool
    decided_by: str = Field(description="aggregate or every_unit.")
    reason: str
    failed_groups: list[str]
    merged_groups: list[str]
    small_groups: list[str]


class StoredResultOut(BaseModel):
    """The result as fixed at the count (votes.tally; docs/record.md)."""

    version: int
    kind: str
    options: list[str]
    tally_grouping: str
    threshold: AppliedThresholdOut
    passed: bool
    outcome: str = Field(
        description="ratified or rejected; accepted or rejected (an offer); decided or no_winner."
    )
    winner: str | None
    explanation: ExplanationOut
    aggregate: FiguresOut
    groups: list[FiguresOut] = Field(description="Each unit's figures, for a per-unit vote.")
    merged: FiguresOut | None


class ReconciledGroupOut(BaseModel):
    group: str
    online_voters: int
    online_ballots: int
    receipts: int
    paper_voters: int
    paper_ballots: int


class ReconciliationOut(BaseModel):
    """Ballots against voters marked voted, per group and channel; receipts = online."""

    groups: list[ReconciledGroupOut]
    reissued: int = Field(description="Credentials reissued.")
    links_shown: int = Field(description="Personal links shown to staff.")
    mail_house_exports: int
    matches: bool
    note: str = Field(description="The committee's explanation of a mismatch.")


class ResultOut(BaseModel):
    """A counted vote's result: never before the close (409), to observers once certified."""

    vote_id: uuid.UUID
    status: str = Field(description="tallied or certified.")
    tallied_at: datetime
    certified_at: datetime | None
    box_digest: str = Field(description="SHA-256 of the ballot box (docs/record.md).")
    result: StoredResultOut
    words: list[str] = Field(description="The outcome, the rule and why, in the asked language.")
    reconciliation: ReconciliationOut


class SignerOut(BaseModel):
    name: str
    signed_at: datetime


class AuditEventRef(BaseModel):
    seq: int
    hash: str


class CertificateOut(ResultOut):
    """What the certificate states (certified votes only)."""

    organization: str
    title: str
    question: dict[str, str]
    opens_at: datetime | None
    closes_at: datetime | None
    eligibility: VoteRuleOut | None
    voter_fingerprint: str | None = Field(description="SHA-256 of the voter list.")
    audit_event: AuditEventRef | None = Field(
        description="The audit log's vote.certified event: its position and hash."
    )
    signatures_required: int
    signers: list[SignerOut]
