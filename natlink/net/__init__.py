"""Outbound network plumbing shared by every feature: the one HTTP client (natlink.net.http)."""
