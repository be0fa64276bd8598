"""The one table of roles and permissions (DESIGN.md §3), and what a route may declare.

Every route declares either ``PUBLIC``, ``SIGNED_IN`` (any staff user, outside an organization)
or a ``Permission`` checked against the user's role in the organization named by the URL.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from ratify.errors import N_


class Role(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"
    COMMITTEE = "committee"
    OBSERVER = "observer"


ROLE_LABELS: Final[dict[Role, str]] = {
    Role.ADMIN: N_("Administrator"),
    Role.STAFF: N_("Staff member"),
    Role.COMMITTEE: N_("Election committee"),
    Role.OBSERVER: N_("Observer"),
}


class Permission(StrEnum):
    ORG_VIEW = "org.view"
    # admin
    ORG_SETTINGS = "org.settings"
    STAFF_MANAGE = "staff.manage"
    API_TOKENS = "api.tokens"
    CONTACT_EXPORT = "contacts.export"
    VOTE_EXTEND = "votes.extend"  # a later close for an open vote
    # staff
    MEMBER_CONTACTS_READ = "members.contacts"
    ROSTERS_MANAGE = "rosters.manage"
    ROSTER_IMPORT = "rosters.import"
    DUES_MANAGE = "dues.manage"
    ELIGIBILITY_PREVIEW = "eligibility.preview"
    VOTE_SETUP = "votes.setup"
    NOTICES_SEND = "notices.send"
    STRIKE_OFF = "votes.strike_off"
    PAPER_BALLOT_ENTRY = "votes.paper_entry"  # the committee's, since issue 6
    COMMUNITY_MANAGE = "community.manage"
    # staff and committee
    MEMBERS_READ = "members.read"
    # committee
    VOTER_LIST_REVIEW = "votes.voter_list_review"
    CHALLENGES_DECIDE = "votes.challenges_decide"
    PAPER_BATCH_CONFIRM = "votes.paper_confirm"
    TALLY = "votes.tally"
    CERTIFY = "votes.certify"
    RESULTS_AFTER_CLOSE = "votes.results_after_close"
    # observer (and others)
    TURNOUT_READ = "votes.turnout"
    AUDIT_READ = "audit.read"
    CERTIFIED_RESULTS_READ = "votes.certified_results"


# Members: contact details for admin and staff; the committee sees names (to review the voter
# list); observers see counts only (the organization's home page).
# Turnout (never results) is also open to staff and committee: DESIGN.md §1 has both "watch
# turnout". The committee reads certified results as it reads them after the close.
_STAFF: Final = frozenset(
    {
        Permission.ORG_VIEW,
        Permission.MEMBERS_READ,
        Permission.MEMBER_CONTACTS_READ,
        Permission.ROSTERS_MANAGE,
        Permission.ROSTER_IMPORT,
        Permission.DUES_MANAGE,
        Permission.ELIGIBILITY_PREVIEW,
        Permission.VOTE_SETUP,
        Permission.NOTICES_SEND,
        Permission.STRIKE_OFF,
        # Results once counted (DESIGN.md §1: staff and committee after the tally).
        Permission.RESULTS_AFTER_CLOSE,
        Permission.CERTIFIED_RESULTS_READ,
        Permission.COMMUNITY_MANAGE,
        Permission.TURNOUT_READ,
    }
)
_COMMITTEE: Final = frozenset(
    {
        Permission.ORG_VIEW,
        Permission.MEMBERS_READ,
        Permission.VOTER_LIST_REVIEW,
        Permission.CHALLENGES_DECIDE,
        # Paper batches are counted after the close by one committee member and confirmed by
        # a second (issue 6): staff strike voters off while the vote is open, never count.
        Permission.PAPER_BALLOT_ENTRY,
        Permission.PAPER_BATCH_CONFIRM,
        Permission.TALLY,
        Permission.CERTIFY,
        Permission.RESULTS_AFTER_CLOSE,
        Permission.TURNOUT_READ,
        Permission.CERTIFIED_RESULTS_READ,
    }
)
_OBSERVER: Final = frozenset(
    {
        Permission.ORG_VIEW,
        Permission.TURNOUT_READ,
        Permission.AUDIT_READ,
        Permission.CERTIFIED_RESULTS_READ,
    }
)

ROLE_PERMISSIONS: Final[dict[Role, frozenset[Permission]]] = {
    Role.ADMIN: frozenset(Permission),
    Role.STAFF: _STAFF,
    Role.COMMITTEE: _COMMITTEE,
    Role.OBSERVER: _OBSERVER,
}


class Access(StrEnum):
    """Route declarations that are not an organization permission."""

    PUBLIC = "public"
    SIGNED_IN = "signed-in"
    # A voter session from a personal link (DESIGN.md §3): that vote's ballot and receipt
    # only. The view finds the voter from the session cookie, or answers 401.
    VOTER = "voter"


PUBLIC: Final = Access.PUBLIC
SIGNED_IN: Final = Access.SIGNED_IN
VOTER: Final = Access.VOTER

RouteAccess = Access | Permission


def role_allows(role: Role | None, permission: Permission) -> bool:
    return role is not None and permission in ROLE_PERMISSIONS[role]
