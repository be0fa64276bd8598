"""Rosters."""
