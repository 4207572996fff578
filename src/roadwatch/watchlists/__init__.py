"""Watchlists: alert rules that operators manage while the system runs."""
