"""Notifiers (Slack)."""
