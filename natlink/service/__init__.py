"""The background service behind `natlink run`: a scheduler for the periodic jobs, listeners that trigger
them at once on router and host events, and the process plumbing (signals, sd_notify, state, metrics, alerts).

Modules, one job each:
  policy.py    PURE decisions: what to run on an event, back-off, "did the router reboot", alert rate limits
  jobs.py      the only place that calls the capability modules (portmap, publicip, ddns, probe), lazily
  slots.py     one scheduled job: no overlap, re-run when triggered while busy, back-off on failure
  events.py    NAT-PMP/PCP announcement listener (224.0.0.1:5350) and netlink address-change listener
  listening.py starts/stops those listeners and the UPnP GENA subscription as one set
  watch.py     what the jobs saw -> alerts of the taxonomy (lost/restored streaks, changes)
  summary.py   the `run --once` summary and its JSON document
  health.py    the service's own health record, persisted as state key "service"
  alerts.py    webhook / command alerts (the event taxonomy), rate-limited; heartbeat pings
  metrics.py   Prometheus text exposition (off by default)
  notify.py    sd_notify over $NOTIFY_SOCKET
  runner.py    Service: wires all of the above; the schedule, event sources, the main loop, reload, stop
  runs.py      the four job bodies as the service runs them (mappings, router poll, DDNS, probe)
  surfaces.py  the metrics page, the status page's actions, heartbeat pings
  wakeup.py    the main loop's wake-up: signals and stop/reload requests from any thread
  statusview.py  reads the state directory for `natlink status`
"""
