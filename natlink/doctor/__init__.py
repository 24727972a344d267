"""natlink doctor: the chain of checks from LAN address to outside reachability, plus host limits."""
