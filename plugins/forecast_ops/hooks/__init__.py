"""Hooks: connections in, clients out."""
