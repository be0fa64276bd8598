"""The election record as a download, from the result page: for those who may read the
result (after the close with ``votes.results_after_close``, everyone with
``votes.certified_results`` once certified), and in the audit log."""

from __future__ import annotations

from starlette.responses import Response

from ratify.authz import Permission
from ratify.votes import record
from ratify.votes import services as votes
from ratify.web.routing import ViewContext, page


def record_file(ctx: ViewContext) -> Response:
    assert ctx.org is not None
    vote = votes.get_vote(ctx.db, ctx.org, ctx.path_uuid("vote_id"))
    votes.advance(ctx.db, ctx.org, vote)
    record.require_readable(vote, results_after_close=ctx.can(Permission.RESULTS_AFTER_CLOSE))
    record.record_download(ctx.db, ctx.org, vote, actor=ctx.user, via="page")
    exported = record.export(ctx.db, ctx.org, vote, ctx.app.settings.secret_key)
    return Response(
        record.dumps(exported),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="election-record-{vote.id}.json"',
            "X-Content-Type-Options": "nosniff",
        },
    )


ROUTES = [
    page("/o/{slug}/votes/{vote_id}/record.json", record_file,
         access=Permission.CERTIFIED_RESULTS_READ, name="vote_record"),
]  # fmt: skip
