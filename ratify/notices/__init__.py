"""Notices: the outbox, email, SMS and letters that carry members their personal links."""
