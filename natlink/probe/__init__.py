"""Reachability from outside: the prober (client side), the reflector (an outside dial-back server),
echoip-compatible checkers and hairpin checks; the verdicts are pure functions in verdicts.py."""
