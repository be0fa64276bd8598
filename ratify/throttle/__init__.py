"""Throttle."""
