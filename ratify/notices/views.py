"""Staff pages for a vote's notices: compose a campaign per channel and language, see who it
reaches, preview it with a real member's data, send or schedule it, follow its progress, and
print the letters for members with no email or phone.

No page here shows a personal link: the preview puts a stand-in where the link goes, and the
letters come only as an audited PDF for administrators (DESIGN.md §4 rule 4).
"""

from __future__ import annotations

from typing import Any

from babel import Locale, UnknownLocaleError
from starlette.responses import Response

from ratify.audit import services as audit
from ratify.authz import Permission
from ratify.errors import N_, BadRequest, NotFound, RatifyError
from ratify.notices import campaigns, letters, outbox, printing, sms, texts
from ratify.notices.models import (
    Audience,
    BothChannels,
    Campaign,
    CampaignStatus,
    MessageChannel,
    MessageKind,
    MessageStatus,
    Reach,
)
from ratify.rosters.models import Member
from ratify.votes import credentials, voters
from ratify.votes import services as votes
from ratify.votes.forms import local_time, parse_local_time
from ratify.votes.models import TallyGrouping, Vote, VoteStatus
from ratify.web.routing import ViewContext, page

KIND_LABELS = {
    MessageKind.ANNOUNCEMENT: N_("Announcement: voting is open"),
    MessageKind.REMINDER: N_("Reminder to those who have not voted"),
    MessageKind.RESULT: N_("Result notice"),
}
STATUS_LABELS = {
    CampaignStatus.DRAFT: N_("Draft"),
    CampaignStatus.SCHEDULED: N_("Scheduled"),
    CampaignStatus.QUEUING: N_("Being queued"),
    CampaignStatus.QUEUED: N_("Queued for sending"),
    CampaignStatus.CANCELLED: N_("Cancelled"),
}
MESSAGE_STATUS_LABELS = {
    MessageStatus.QUEUED: N_("Queued"),
    MessageStatus.SENDING: N_("Sending"),
    MessageStatus.SENT: N_("Sent"),
    MessageStatus.SKIPPED: N_("Not needed any more"),
    MessageStatus.BOUNCED: N_("Bounced"),
    MessageStatus.DEAD: N_("Failed"),
}
CHANNEL_LABELS = {
    MessageChannel.EMAIL: N_("Email"),
    MessageChannel.SMS: N_("Text message"),
    MessageChannel.LETTER: N_("Letter"),
}
AUDIENCE_LABELS = {
    Audience.ALL: N_("Every voter"),
    Audience.NOT_VOTED: N_("Only those who have not voted (checked again as each is sent)"),
}
REACH_LABELS = {
    Reach.ALL: N_("Everyone in the audience, by the channels below"),
    Reach.EMAIL: N_("Only those with an email address, by email"),
    Reach.SMS: N_("Only those with a phone, by text"),
    Reach.LETTER_ONLY: N_("Only those with neither: a letter"),
}
BOTH_LABELS = {
    BothChannels.EMAIL: N_("Email only"),
    BothChannels.SMS: N_("Text only"),
    BothChannels.BOTH: N_("Both"),
}
# Letters per PDF download: WeasyPrint lays out some 5 to 8 a second, so 100 is a download
# of 15 to 20 s; a mail house takes the CSV (votes.oversight) instead, for any number.
LETTER_BATCH = 100
PREVIEW_LINK = "/v/xxxx-xxxx-xxxx-xxxx-xxxx-xxxx-xx"


def _vote(ctx: ViewContext) -> Vote:
    assert ctx.org is not None
    vote = votes.get_vote(ctx.db, ctx.org, ctx.path_uuid("vote_id"))
    votes.advance(ctx.db, ctx.org, vote)
    if vote.status == VoteStatus.DRAFT:
        raise NotFound()  # no voter list yet, nobody to write to
    return vote


def _campaign(ctx: ViewContext, vote: Vote) -> Campaign:
    assert ctx.org is not None
    return campaigns.get(ctx.db, ctx.org, vote, ctx.path_uuid("campaign_id"))


def _labels(ctx: ViewContext, labels: dict[Any, str]) -> dict[str, str]:
    return {key.value: ctx.gettext(text) for key, text in labels.items()}


def _kinds_now(vote: Vote) -> list[MessageKind]:
    if vote.status == VoteStatus.CERTIFIED:
        return [MessageKind.RESULT]
    if vote.status in (VoteStatus.SCHEDULED, VoteStatus.OPEN):
        return [MessageKind.ANNOUNCEMENT, MessageKind.REMINDER]
    return []


def _groups(ctx: ViewContext, vote: Vote) -> list[str]:
    if vote.tally_grouping != TallyGrouping.PER_UNIT:
        return []
    return sorted(voters.summarize(ctx.db, vote).groups)


def notices_page(ctx: ViewContext) -> Response:
    vote = _vote(ctx)
    found = campaigns.list_for_vote(ctx.db, vote)
    progress: dict[Any, dict[str, int]] = {c.id: {} for c in found}
    for campaign_id, by_channel in outbox.counts_by_campaign(ctx.db, [c.id for c in found]).items():
        by_status = progress[campaign_id]
        for (_, status), n in by_channel.items():
            by_status[status.value] = by_status.get(status.value, 0) + n
    return ctx.render(
        "notices/list.html",
        vote=vote,
        campaigns=found,
        progress=progress,
        kinds=_kinds_now(vote),
        kind_labels=_labels(ctx, KIND_LABELS),
        status_labels=_labels(ctx, STATUS_LABELS),
        statuses=list(MessageStatus),
        message_status_labels=_labels(ctx, MESSAGE_STATUS_LABELS),
        tz=ctx.org.timezone if ctx.org else "UTC",
    )


# -- the form ----------------------------------------------------------------------------------


def _choice(ctx: ViewContext, name: str, cls: Any, default: Any) -> Any:
    raw = ctx.field(name, default.value)
    try:
        return cls(raw)
    except ValueError:
        raise BadRequest(N_("Choose one of the options offered.")) from None


def _languages_in_form(ctx: ViewContext, vote: Vote, campaign: Campaign | None) -> list[str]:
    found = campaigns.languages_of(vote, campaign)
    added = ctx.field("add_language").strip().lower()
    if added and added not in found:
        try:
            Locale.parse(added)
        except (UnknownLocaleError, ValueError):
            raise BadRequest(
                N_("%(code)s is not a language code (like fr, vi or zh_Hant)."), code=added
            ) from None
        found.append(added)
    return found


def _parse(
    ctx: ViewContext, vote: Vote, kind: MessageKind, campaign: Campaign | None
) -> campaigns.CampaignForm:
    languages = _languages_in_form(ctx, vote, campaign)
    defaults = campaigns.default_texts(kind, languages)
    by_channel: dict[str, dict[str, dict[str, str]]] = {}
    for channel in campaigns.TEXT_CHANNELS:
        by_channel[channel.value] = {}
        for lang in languages:
            default = defaults[channel.value][lang]
            given = {
                part: ctx.field(f"text.{channel.value}.{lang}.{part}").replace("\r\n", "\n")
                for part in ("subject", "body")
            }
            if not any(given.values()) and lang not in vote.languages:
                given = default  # a language just added starts from the default text
            if channel == MessageChannel.SMS:
                given["subject"] = ""
            by_channel[channel.value][lang] = given
    group = ctx.field("tally_group").strip()
    if group and group not in _groups(ctx, vote):
        raise BadRequest(N_("Choose one of the options offered."))
    return campaigns.CampaignForm(
        kind=kind,
        name=ctx.field("name"),
        audience=_choice(ctx, "audience", Audience, Audience.ALL),
        reach=_choice(ctx, "reach", Reach, Reach.ALL),
        tally_group=group or None,
        both_channels=_choice(ctx, "both_channels", BothChannels, BothChannels.EMAIL),
        letters=ctx.field("letters") == "on",
        texts=by_channel,
    )


def _form_values(form: campaigns.CampaignForm) -> dict[str, str]:
    values = {
        "name": form.name,
        "audience": form.audience.value,
        "reach": form.reach.value,
        "tally_group": form.tally_group or "",
        "both_channels": form.both_channels.value,
        "letters": "on" if form.letters else "",
    }
    for channel, by_language in form.texts.items():
        for lang, text in by_language.items():
            for part, value in text.items():
                values[f"text.{channel}.{lang}.{part}"] = value
    return values


def _campaign_values(campaign: Campaign) -> dict[str, str]:
    return _form_values(
        campaigns.CampaignForm(
            kind=campaign.kind,
            name=campaign.name,
            audience=campaign.audience,
            reach=campaign.reach,
            tally_group=campaign.tally_group,
            both_channels=campaign.both_channels,
            letters=campaign.letters,
            texts=campaign.texts,
        )
    )


def _segments(
    ctx: ViewContext, vote: Vote, values: dict[str, str], languages: list[str]
) -> dict[str, sms.SmsLength]:
    """Each language's text as a member with a typical name would get it: this vote's own
    title, organization and window, a link of real length. What the segment count shown
    before sending is worked out on."""
    assert ctx.org is not None
    composer = outbox.Composer(ctx.app.settings)
    found = {}
    for lang in languages:
        opens, closes = composer.window(ctx.org, vote, lang)
        sample = {
            "name": "Maria Hernandez",
            "organization": ctx.org.name,
            "vote": vote.title,
            "opens": opens,
            "closes": closes,
            "link": credentials.link(ctx.app.settings.base_url, "x" * credentials.LENGTH),
        }
        body = values.get(f"text.sms.{lang}.body", "")
        found[lang] = sms.segments(texts.fill(body, sample))
    return found


def _form_page(
    ctx: ViewContext,
    vote: Vote,
    kind: MessageKind,
    values: dict[str, str],
    languages: list[str],
    *,
    campaign: Campaign | None = None,
    status_code: int = 200,
    problem: str | None = None,
    errors: dict[str, str] | None = None,
    preview: dict[str, Any] | None = None,
) -> Response:
    assert ctx.org is not None
    editable = campaign is None or campaign.status in (
        CampaignStatus.DRAFT,
        CampaignStatus.SCHEDULED,
    )
    shown_errors = {}
    for key, message in (errors or {}).items():
        if not key.endswith(".found"):
            found = (errors or {}).get(key + ".found", "")
            shown = ctx.gettext(message, found=found) if found else ctx.gettext(message)
            # The service names texts channel.language.part; their fields are text.<that>.
            shown_errors[key if key == "name" else f"text.{key}"] = shown
    # Subject and body texts of every channel, for SMS the segments too.
    return ctx.render(
        "notices/campaign.html",
        status_code=status_code,
        problem=problem,
        errors=shown_errors,
        values=values,
        vote=vote,
        kind=kind,
        campaign=campaign,
        editable=editable,
        text_languages=languages,  # not `languages`: base.html's switcher reads that
        groups=_groups(ctx, vote),
        placeholders={k: ctx.gettext(v) for k, v in texts.PLACEHOLDERS.items()},
        segments=_segments(ctx, vote, values, languages),
        reach_counts=campaigns.reach_counts(ctx.db, campaign) if campaign else None,
        progress=outbox.counts(ctx.db, campaign.id) if campaign else {},
        preview=preview,
        channels=list(MessageChannel),
        statuses=list(MessageStatus),
        kind_labels=_labels(ctx, KIND_LABELS),
        status_labels=_labels(ctx, STATUS_LABELS),
        message_status_labels=_labels(ctx, MESSAGE_STATUS_LABELS),
        channel_labels=_labels(ctx, CHANNEL_LABELS),
        audience_labels=_labels(ctx, AUDIENCE_LABELS),
        reach_labels=_labels(ctx, REACH_LABELS),
        both_labels=_labels(ctx, BOTH_LABELS),
        send_at=local_time(campaign.send_at if campaign else None, ctx.org.timezone),
        tz=ctx.org.timezone,
    )


def new_campaign_form(ctx: ViewContext) -> Response:
    vote = _vote(ctx)
    try:
        kind = MessageKind(ctx.request.query_params.get("kind", "announcement"))
    except ValueError:
        raise NotFound() from None
    if kind not in _kinds_now(vote):
        raise NotFound()
    languages = list(vote.languages)
    form = campaigns.CampaignForm(
        kind=kind,
        name=ctx.gettext(KIND_LABELS[kind]),
        audience=Audience.NOT_VOTED if kind == MessageKind.REMINDER else Audience.ALL,
        reach=Reach.ALL,
        tally_group=None,
        both_channels=BothChannels.EMAIL,
        letters=kind == MessageKind.ANNOUNCEMENT and vote.mail_letters,
        texts=campaigns.default_texts(kind, languages),
    )
    return _form_page(ctx, vote, kind, _form_values(form), languages)


def _refused_form(
    ctx: ViewContext,
    vote: Vote,
    kind: MessageKind,
    exc: RatifyError,
    campaign: Campaign | None,
) -> Response:
    languages = _languages_in_form(ctx, vote, campaign) if ctx.form else list(vote.languages)
    values = {key: str(value) for key, value in (ctx.form or {}).items()}
    errors = getattr(exc, "errors", None)
    return _form_page(
        ctx, vote, kind, values, languages, campaign=campaign, status_code=exc.status_code,
        problem=ctx.gettext(exc.message, **exc.params), errors=errors,
    )  # fmt: skip


def create_campaign(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    vote = _vote(ctx)
    try:
        kind = MessageKind(ctx.field("kind"))
    except ValueError:
        raise BadRequest(N_("Choose one of the options offered.")) from None
    try:
        form = _parse(ctx, vote, kind, None)
        with ctx.db.begin_nested():  # a refusal leaves nothing written
            campaign = campaigns.create(ctx.db, ctx.org, vote, form, actor=ctx.user)
    except RatifyError as exc:
        return _refused_form(ctx, vote, kind, exc, None)
    return ctx.redirect(_campaign_url(ctx, vote, campaign))


def _campaign_url(ctx: ViewContext, vote: Vote, campaign: Campaign) -> str:
    assert ctx.org is not None
    return f"/o/{ctx.org.slug}/votes/{vote.id}/notices/{campaign.id}"


def campaign_page(ctx: ViewContext, preview: dict[str, Any] | None = None) -> Response:
    vote = _vote(ctx)
    campaign = _campaign(ctx, vote)
    return _form_page(
        ctx,
        vote,
        campaign.kind,
        _campaign_values(campaign),
        campaigns.languages_of(vote, campaign),
        campaign=campaign,
        preview=preview,
    )


def save_campaign(ctx: ViewContext) -> Response:
    assert ctx.org is not None and ctx.user is not None
    vote = _vote(ctx)
    campaign = _campaign(ctx, vote)
    try:
        form = _parse(ctx, vote, campaign.kind, campaign)
        with ctx.db.begin_nested():
            campaigns.update(ctx.db, ctx.org, vote, campaign, form, actor=ctx.user)
    except RatifyError as exc:
        ctx.db.refresh(campaign)
        return _refused_form(ctx, vote, campaign.kind, exc, campaign)
    return ctx.redirect(_campaign_url(ctx, vote, campaign) + "?saved=1")


def _act(ctx: ViewContext, action: str) -> Response:
    assert ctx.org is not None and ctx.user is not None
    vote = _vote(ctx)
    campaign = _campaign(ctx, vote)
    try:
        with ctx.db.begin_nested():
            _do(ctx, action, vote, campaign)
    except RatifyError as exc:
        ctx.db.refresh(campaign)
        return _form_page(
            ctx, vote, campaign.kind, _campaign_values(campaign),
            campaigns.languages_of(vote, campaign), campaign=campaign,
            status_code=exc.status_code, problem=ctx.gettext(exc.message, **exc.params),
        )  # fmt: skip
    return ctx.redirect(_campaign_url(ctx, vote, campaign))


def _do(ctx: ViewContext, action: str, vote: Vote, campaign: Campaign) -> None:
    assert ctx.org is not None and ctx.user is not None
    if action == "send":
        campaigns.send_now(ctx.db, ctx.org, vote, campaign, actor=ctx.user)
    elif action == "schedule":
        moment, error = parse_local_time(ctx.field("send_at"), ctx.org.timezone)
        if error or moment is None:
            raise BadRequest(error or N_("Enter the date and time as YYYY-MM-DD HH:MM."))
        campaigns.schedule(ctx.db, ctx.org, vote, campaign, moment, actor=ctx.user)
    elif action == "cancel":
        campaigns.cancel(ctx.db, ctx.org, campaign, actor=ctx.user)
    else:
        count = outbox.retry_dead(ctx.db, campaign.id)
        audit.record(
            ctx.db, organization=ctx.org, actor=ctx.user, action="notice.campaign_retried",
            object_type="campaign", object_id=campaign.id, data={"messages": count},
        )  # fmt: skip


def send_campaign(ctx: ViewContext) -> Response:
    return _act(ctx, "send")


def schedule_campaign(ctx: ViewContext) -> Response:
    return _act(ctx, "schedule")


def cancel_campaign(ctx: ViewContext) -> Response:
    return _act(ctx, "cancel")


def retry_campaign(ctx: ViewContext) -> Response:
    return _act(ctx, "retry")


def preview_campaign(ctx: ViewContext) -> Response:
    """The campaign's texts as one real member would get them, with a stand-in for the link."""
    vote = _vote(ctx)
    campaign = _campaign(ctx, vote)
    number = ctx.field("member_number").strip()
    voter = voters.find_voter(ctx.db, vote, number) if number else None
    if voter is None:
        return _form_page(
            ctx, vote, campaign.kind, _campaign_values(campaign),
            campaigns.languages_of(vote, campaign), campaign=campaign, status_code=404,
            problem=ctx.gettext(N_("Nobody with this member number is on the voter list.")),
        )  # fmt: skip
    member = ctx.db.get_one(Member, voter.member_id)
    assert ctx.org is not None
    language = outbox.notice_language(
        member.preferred_language, campaigns.languages_of(vote, campaign)
    )
    composer = outbox.Composer(ctx.app.settings)
    values = composer.voter_values(ctx.org, vote, voter, member, language)
    values["link"] = ctx.app.settings.base_url.rstrip("/") + PREVIEW_LINK
    shown = {}
    for channel in campaigns.TEXT_CHANNELS:
        text = outbox.text_for(campaign, campaign.kind, channel, language)
        body = texts.fill(text.body, values)
        shown[channel.value] = {
            "subject": texts.fill(text.subject, values),
            "body": body,
            "segments": sms.segments(body) if channel == MessageChannel.SMS else None,
        }
    preview = {
        "member_number": voter.member_number,
        "language": language,
        "email": member.email,
        "phone": member.phone,
        "texts": shown,
    }
    return campaign_page(ctx, preview=preview)


def letters_pdf(ctx: ViewContext) -> Response:
    """The next batch of the campaign's letters as one PDF, marked printed: administrators
    only, audited, since each letter carries a personal link."""
    assert ctx.org is not None and ctx.user is not None
    vote = _vote(ctx)
    campaign = _campaign(ctx, vote)
    batch = printing.take_batch(
        ctx.db, ctx.app.settings, ctx.org, vote, campaign, limit=LETTER_BATCH
    )
    if not batch:
        raise BadRequest(N_("No letters are waiting to be printed for this notice."))
    data = letters.letters_pdf(ctx.app.templates, batch)
    audit.record(
        ctx.db, organization=ctx.org, actor=ctx.user, action="notice.letters_printed",
        object_type="campaign", object_id=campaign.id, data={"letters": len(batch)},
    )  # fmt: skip
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="letters-{campaign.id}.pdf"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _path(suffix: str = "") -> str:
    return "/o/{slug}/votes/{vote_id}/notices" + suffix


_ONE = "/{campaign_id}"
ROUTES = [
    page(_path(), notices_page, access=Permission.NOTICES_SEND),
    page(_path("/new"), new_campaign_form, access=Permission.NOTICES_SEND),
    page(_path("/new"), create_campaign, access=Permission.NOTICES_SEND, methods=["POST"]),
    page(_path(_ONE), campaign_page, access=Permission.NOTICES_SEND),
    page(_path(_ONE), save_campaign, access=Permission.NOTICES_SEND, methods=["POST"]),
    page(_path(_ONE + "/send"), send_campaign, access=Permission.NOTICES_SEND, methods=["POST"]),
    page(
        _path(_ONE + "/schedule"),
        schedule_campaign,
        access=Permission.NOTICES_SEND,
        methods=["POST"],
    ),
    page(
        _path(_ONE + "/cancel"), cancel_campaign, access=Permission.NOTICES_SEND, methods=["POST"]
    ),
    page(_path(_ONE + "/retry"), retry_campaign, access=Permission.NOTICES_SEND, methods=["POST"]),
    page(
        _path(_ONE + "/preview"),
        preview_campaign,
        access=Permission.NOTICES_SEND,
        methods=["POST"],
    ),
    page(
        _path(_ONE + "/letters.pdf"),
        letters_pdf,
        access=Permission.CONTACT_EXPORT,
        methods=["POST"],
    ),
]
