"""DDNS: providers behind one small interface (base.Provider), pure policy, and the round runner (updater).

Import `natlink.ddns.updater.update_all` for a round; this package itself stays import-light."""
