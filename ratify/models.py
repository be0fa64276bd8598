"""Imports every domain's tables so Base.metadata is complete (for Alembic and tests)."""

from ratify.accounts.models import PasswordToken, StaffRole, StaffUser
from ratify.api.models import ApiToken
from ratify.audit.models import AuditEvent, AuditHead
from ratify.community.models import (
    Attendance,
    CommunityCampaign,
    Constituency,
    ConstituencyMember,
    DecisionMaker,
    Demand,
    DemandVersion,
    Event,
    Offer,
    OfferAssessment,
)
from ratify.db import Base
from ratify.jobs.models import Job, ScheduledTick
from ratify.notices.models import Campaign, Message, SmsOptOut
from ratify.orgs.models import Organization
from ratify.rosters.models import (
    BargainingUnit,
    ColumnMapping,
    DuesPayment,
    ImportTouch,
    Member,
    MemberStatusPeriod,
    RosterImport,
    RosterUpload,
    UnitAssignment,
)
from ratify.throttle.models import ThrottleHit
from ratify.votes.models import (
    Ballot,
    CommitteeMember,
    Receipt,
    Vote,
    VoteDocument,
    VoteOption,
    Voter,
)

__all__ = [
    "ApiToken",
    "Attendance",
    "AuditEvent",
    "AuditHead",
    "Ballot",
    "BargainingUnit",
    "Base",
    "Campaign",
    "ColumnMapping",
    "CommitteeMember",
    "CommunityCampaign",
    "Constituency",
    "ConstituencyMember",
    "DecisionMaker",
    "Demand",
    "DemandVersion",
    "DuesPayment",
    "Event",
    "ImportTouch",
    "Job",
    "Member",
    "MemberStatusPeriod",
    "Message",
    "Offer",
    "OfferAssessment",
    "Organization",
    "PasswordToken",
    "Receipt",
    "RosterImport",
    "RosterUpload",
    "ScheduledTick",
    "SmsOptOut",
    "StaffRole",
    "StaffUser",
    "ThrottleHit",
    "UnitAssignment",
    "Vote",
    "VoteDocument",
    "VoteOption",
    "Voter",
]
