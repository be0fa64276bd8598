"""A vote's ballot sheet: what the member's pages show of it (title, languages, each
language's question, options and summary) and the option keys a cast may record.

Once a vote is open nothing on its sheet can change (only the closing time can move, and that
is read with the voter on every request), so each app process reads a sheet once and keeps
it: the member's pages, read hundreds of times a second during a big vote, then run one
statement each, and a cast runs exactly the three writes of DESIGN.md §4 rule 2. A draft's or
a scheduled vote's sheet, which staff may still change, is read afresh every time.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy.orm import Session, selectinload

from ratify.errors import NotFound
from ratify.votes import services
from ratify.votes.models import Vote, VoteKind, VoteStatus

# Statuses in which a sheet never changes again.
FIXED = frozenset({VoteStatus.OPEN, VoteStatus.CLOSED, VoteStatus.TALLIED, VoteStatus.CERTIFIED})
KEPT = 256  # sheets a process keeps, most recently used first out last


@dataclass(frozen=True)
class Sheet:
    vote_id: uuid.UUID
    title: str
    kind: VoteKind
    languages: tuple[str, ...]
    marks: dict[str, str]  # what a ballot form sends for an option -> the option's key
    ballots: dict[str, services.Ballot]  # by language
    # The receipt page by language, around its code (``voting.receipt_page``), made once.
    receipt_pages: dict[str, tuple[str, str]] = field(default_factory=dict, compare=False)

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(self.marks.values())

    def ballot(self, language: str, closes_at: datetime | None) -> services.Ballot:
        """The ballot in ``language`` with the vote's current closing time."""
        return replace(self.ballots[language], closes_at=closes_at)


_kept: OrderedDict[uuid.UUID, Sheet] = OrderedDict()
_lock = threading.Lock()


def kept(vote_id: uuid.UUID) -> Sheet | None:
    """The sheet this process keeps for an open or closed vote, if it has read it yet."""
    with _lock:
        sheet = _kept.get(vote_id)
        if sheet is not None:
            _kept.move_to_end(vote_id)
        return sheet


def sheet(db: Session, vote_id: uuid.UUID) -> Sheet:
    """The vote's sheet: kept once the vote is open, read from the database until then."""
    found = kept(vote_id)
    if found is not None:
        return found
    vote = db.get(Vote, vote_id, options=[selectinload(Vote.options)])
    if vote is None:
        raise NotFound()
    documents = services.documents_of(db, vote)
    made = Sheet(
        vote_id=vote.id,
        title=vote.title,
        kind=vote.kind,
        languages=tuple(vote.languages),
        marks=services.option_marks(vote),
        ballots={
            language: services.ballot_in(vote, documents.get(language), language)
            for language in vote.languages
        },
    )
    if vote.status in FIXED:
        with _lock:
            _kept[vote_id] = made
            while len(_kept) > KEPT:
                _kept.popitem(last=False)
    return made


def forget_all() -> None:
    """Drop every kept sheet (tests that rewrite votes behind the services' back)."""
    with _lock:
        _kept.clear()
