"""Domain errors. Each carries the HTTP status and a message a person can act on.

Messages are English source strings marked for translation; the web layer translates them
into the reader's language and fills in ``params``.
"""

from __future__ import annotations

from typing import Any


def N_(message: str) -> str:
    """Mark a string for extraction into the catalogs; it is translated where it is shown."""
    return message


class ConfigurationError(Exception):
    """Settings that Ratify cannot start with."""


class RatifyError(Exception):
    status_code = 400
    default_message = N_("The request could not be completed.")

    def __init__(self, message: str | None = None, **params: Any) -> None:
        self.message = message or self.default_message
        self.params = params
        super().__init__(self.message % params if params else self.message)


class BadRequest(RatifyError):
    status_code = 400


class Forbidden(RatifyError):
    status_code = 403
    default_message = N_("You do not have permission to do that.")


class CsrfFailure(Forbidden):
    default_message = N_(
        "This form has expired or did not come from Ratify. Go back, reload the page and try again."
    )


class NotFound(RatifyError):
    status_code = 404
    default_message = N_("There is nothing here. Check the address.")


class Conflict(RatifyError):
    status_code = 409
    default_message = N_("That was changed by someone else in the meantime.")


class PayloadTooLarge(RatifyError):
    status_code = 413
    default_message = N_("What you sent is too large.")


class TooManyRequests(RatifyError):
    status_code = 429
    default_message = N_("Too many attempts. Wait a few minutes and try again.")
