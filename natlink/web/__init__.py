"""The status page served by `natlink run` ([service] web = "127.0.0.1:9878", off by default).

view.py turns what the service keeps (state store + health, via statusview.gather) into facts with their ages;
render.py writes them as HTML (the page works without JavaScript); server.py serves it, live over
server-sent events, with login (a non-loopback bind needs a password), CSRF-checked actions and no secret in
any answer. static/ holds the CSS and the small script, shipped in the package (no CDN, no build step)."""
