"""Did the router lose its mappings? RFC 6887 8.5 (also fits NAT-PMP's seconds-since-start-of-epoch)."""

from __future__ import annotations


def epoch_lost(prev_epoch: int, prev_at: float, epoch: int, now: float) -> bool:
    """True when the router's epoch is inconsistent with the time that passed: it restarted (or got a new
    WAN address) and forgot every mapping.

    prev_epoch / prev_at: the epoch seen earlier and the local wall-clock time then; epoch / now: the current pair.
    """
    if epoch + 1 < prev_epoch:  # went backwards by more than a second
        return True
    client_delta = max(0.0, now - prev_at)
    server_delta = epoch - prev_epoch
    # Clocks may drift by 1/16 either way, plus 2 s slack (RFC 6887 8.5).
    if client_delta + 2 < server_delta - server_delta / 16:
        return True
    if server_delta + 2 < client_delta - client_delta / 16:
        return True
    return False
