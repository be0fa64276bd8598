"""Votes through the JSON API: the list, one vote with its frozen voter list in counts, and
turnout. Nothing here reads the ballot box (DESIGN.md §4 rule 3)."""

from __future__ import annotations

from ratify.api.routing import ApiContext, api_route
from ratify.api.schemas import (
    GroupTurnoutOut,
    HourOut,
    TurnoutOut,
    VoteDetailOut,
    VoteList,
    VoteOut,
    VoterListOut,
)
from ratify.authz import Permission
from ratify.rosters import services as rosters
from ratify.votes import services as votes
from ratify.votes import turnout, voters
from ratify.votes.models import Channel, Vote, VoteStatus

API = "/api/v1/orgs/{slug}"


def _out(vote: Vote) -> dict[str, object]:
    return {
        "id": vote.id,
        "title": vote.title,
        "kind": vote.kind.value,
        "status": vote.status.value,
        "languages": list(vote.languages),
        "opens_at": vote.opens_at,
        "closes_at": vote.closes_at,
    }


def _vote(ctx: ApiContext) -> Vote:
    rosters.require_union(ctx.org)
    vote = votes.get_vote(ctx.db, ctx.org, ctx.path_uuid("vote_id"))  # another org's: 404
    votes.advance(ctx.db, ctx.org, vote)
    return vote


def votes_list(ctx: ApiContext) -> VoteList:
    rosters.require_union(ctx.org)
    found = votes.list_votes(ctx.db, ctx.org)
    for vote in found:
        votes.advance(ctx.db, ctx.org, vote)
    return VoteList(items=[VoteOut.model_validate(_out(v)) for v in found])


def vote_read(ctx: ApiContext) -> VoteDetailOut:
    vote = _vote(ctx)
    summary = None
    if vote.status != VoteStatus.DRAFT:
        counts = voters.summarize(ctx.db, vote)
        summary = VoterListOut(
            fingerprint=vote.voter_fingerprint,
            eligible=counts.eligible,
            excluded=counts.excluded,
            challenged=counts.challenged,
            missing_second_factor=counts.missing_factor,
            groups=counts.groups,
            small_groups=sorted(counts.small_groups),
        )
    return VoteDetailOut.model_validate({**_out(vote), "voter_list": summary})


def vote_turnout(ctx: ApiContext) -> TurnoutOut:
    found = turnout.turnout(ctx.db, _vote(ctx))
    return TurnoutOut(
        eligible=found.total.eligible,
        voted=found.total.voted,
        groups=[
            GroupTurnoutOut(
                group=g.group,
                eligible=g.eligible,
                voted=g.voted,
                online=g.by_channel.get(Channel.ONLINE, 0),
                paper_or_in_person=g.by_channel.get(Channel.PAPER, 0)
                + g.by_channel.get(Channel.IN_PERSON, 0),
            )
            for g in found.groups
        ],
        hourly=[HourOut(hour=hour, voted=count) for hour, count in found.hourly],
    )


ROUTES = [
    api_route(f"{API}/votes", votes_list, access=Permission.TURNOUT_READ, response=VoteList),
    api_route(f"{API}/votes/{{vote_id}}", vote_read, access=Permission.TURNOUT_READ,
              response=VoteDetailOut),
    api_route(f"{API}/votes/{{vote_id}}/turnout", vote_turnout, access=Permission.TURNOUT_READ,
              response=TurnoutOut),
]  # fmt: skip
