"""(being written)"""

from __future__ import annotations

from ratify.web.routing import RatifyRoute

ROUTES: list[RatifyRoute] = []
