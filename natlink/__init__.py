"""natlink: keep a home server reachable from the internet."""

__version__ = "0.1.0"
