"""Ratify: secret-ballot votes for unions and community organizations."""

__version__ = "0.1.0"
