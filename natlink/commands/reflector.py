"""Run the outside dial-back helper used by `natlink probe` on a machine outside your network.

It connects back only to the address each request comes from (never to a host named in the request),
with optional tokens, per-address and per-token budgets and a cap on ports per request. It also serves
GET /v1/hold (a held line-echo connection for `natlink doctor`'s NAT idle-timeout measurement).
HTTPS unless --insecure-http. The limits and threat model are in docs/design/reflector.md; to run it as a
service, `natlink init --systemd` installs natlink-reflector.service.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal

from natlink.errors import NatlinkError, UsageError

log = logging.getLogger("natlink.reflector")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", metavar="ADDR:PORT", required=True,
                        help="address and port to serve on, e.g. 0.0.0.0:8765 or [::]:8765")
    parser.add_argument("--token-file", metavar="PATH",
                        help="require this shared token (Authorization: Bearer); e.g. $CREDENTIALS_DIRECTORY/token")
    parser.add_argument("--rate", type=float, default=60.0, metavar="N",
                        help="probe requests and hold openings per minute per client address, also the burst "
                             "(default 60; 0 = off)")
    parser.add_argument("--token-rate", type=float, default=120.0, metavar="N",
                        help="the same budget per token, whatever address uses it (default 120; 0 = off)")
    parser.add_argument("--max-ports", type=int, default=32, metavar="N", help="ports per request (default 32)")
    parser.add_argument("--max-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="cap on the dial timeout a client may ask for (default 10)")
    parser.add_argument("--max-body", type=int, default=16384, metavar="BYTES", help="request body limit (default 16384)")
    parser.add_argument("--max-connections", type=int, default=3000, metavar="N",
                        help="open connections overall (default 3000; keep it below LimitNOFILE)")
    parser.add_argument("--connections-per-address", type=int, default=64, metavar="N",
                        help="open connections from one address, holds included (default 64)")
    parser.add_argument("--request-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="the whole request must arrive within this from connect (default 10)")
    parser.add_argument("--hold-per-client", type=int, default=40, metavar="N",
                        help="held /v1/hold connections per client address (default 40)")
    parser.add_argument("--hold-total", type=int, default=512, metavar="N",
                        help="held /v1/hold connections overall (default 512)")
    parser.add_argument("--hold-max", type=float, default=3600.0, metavar="SECONDS",
                        help="lifetime of a held connection (default 3600)")
    parser.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate (chain)")
    parser.add_argument("--tls-key", metavar="PEM", help="the certificate's private key (default: inside --tls-cert)")
    parser.add_argument("--insecure-http", action="store_true",
                        help="serve plain HTTP (tokens cross the network in clear text; for tests and LANs)")
    parser.add_argument("--trusted-proxy", action="append", default=[], metavar="CIDR",
                        help="connections from here start with a PROXY v2 header naming the real client "
                             "(HAProxy `send-proxy-v2`); repeatable")
    parser.add_argument("--metrics", metavar="ADDR:PORT",
                        help="serve Prometheus metrics on GET /metrics here (keep it private, e.g. 127.0.0.1:9878)")


def _address(option: str, text: str) -> tuple[str, int]:
    from natlink.hostport import parse_target

    listen = parse_target(text, any_port=True)  # port 0 = any free port (tests)
    if listen is None:
        port = text.rsplit(":", 1)[-1]
        if ":" in text and port.isdigit():
            raise UsageError(f"{option} {text!r}: port {port} is out of range (1-65535)",
                             f"e.g. {option} 0.0.0.0:8765")
        raise UsageError(f"{option} {text!r} is not ADDR:PORT", f"e.g. {option} 0.0.0.0:8765")
    return listen


def settings_from(args: argparse.Namespace):
    from natlink.cleartext import is_loopback
    from natlink.probe.reflector import ReflectorSettings
    from natlink.secrets import SecretRef, SecretUnavailable, read_secret, warn_if_exposed

    listen = _address("--listen", args.listen)
    metrics = _address("--metrics", args.metrics) if args.metrics else None
    for name in ("max_ports", "max_body", "max_connections", "connections_per_address", "hold_per_client",
                 "hold_total"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1", "give a positive number")
    if args.rate < 0 or args.token_rate < 0 or args.max_timeout <= 0 or args.hold_max <= 0 \
            or args.request_timeout <= 0:
        raise UsageError("--rate, --token-rate, --max-timeout, --hold-max and --request-timeout must be positive",
                         "give a positive number")
    if args.tls_key and not args.tls_cert:
        raise UsageError("--tls-key needs --tls-cert", "give both")
    if not args.tls_cert and not args.insecure_http:
        raise UsageError("the reflector serves HTTPS: --tls-cert is missing",
                         "give --tls-cert/--tls-key (e.g. from certbot), or --insecure-http to serve plain HTTP")
    if args.tls_cert and args.insecure_http:
        raise UsageError("--insecure-http and --tls-cert contradict each other", "give one of them")
    for cidr in args.trusted_proxy:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise UsageError(f"--trusted-proxy {cidr!r} is not an address or CIDR",
                             "e.g. --trusted-proxy 10.0.0.5/32") from None
    token = None
    if args.token_file:
        try:
            token = read_secret(SecretRef("file", args.token_file))
            warn_if_exposed(args.token_file, "reflector --token-file")
        except SecretUnavailable as exc:
            raise NatlinkError(exc.message, exc.hint, exit_code=2) from None
        if not args.tls_cert and not is_loopback(listen[0]):
            log.warning("reflector: --token-file without --tls-cert: clients send the token in clear text over "
                        "http://; serve HTTPS with --tls-cert/--tls-key")
    return ReflectorSettings(host=listen[0], port=listen[1], token=token, rate=args.rate, token_rate=args.token_rate,
                             max_ports=args.max_ports, max_body=args.max_body, max_timeout=args.max_timeout,
                             max_connections=args.max_connections,
                             connections_per_address=args.connections_per_address,
                             hold_per_client=args.hold_per_client, hold_total=args.hold_total,
                             hold_max=args.hold_max, request_timeout=args.request_timeout,
                             tls_cert=args.tls_cert, tls_key=args.tls_key,
                             trusted_proxies=tuple(args.trusted_proxy), metrics=metrics)


def run(ctx, args: argparse.Namespace) -> int:
    import ssl

    from natlink.probe.reflector import ReflectorServer

    settings = settings_from(args)
    try:
        server = ReflectorServer(settings)
    except ssl.SSLError as exc:
        raise NatlinkError(f"cannot load the TLS certificate/key: {exc.reason or exc}",
                           "check --tls-cert/--tls-key (PEM files)", exit_code=2) from None
    except OSError as exc:
        raise NatlinkError(f"cannot listen on {args.listen}: {exc.strerror or exc}",
                           "pick a free port, or an address this machine has") from None
    host, port = server.address
    scheme = "https" if settings.tls_cert else "http"
    where = f"[{host}]" if ":" in host else host
    tokens = len(server.tokens)
    # a server runs until stopped: its one document says where it listens (--listen :0 picks the port)
    ctx.out.json({"ok": True, "url": f"{scheme}://{where}:{port}", "token_required": bool(tokens),
                  "tokens": tokens, "rate": settings.rate, "max_ports": settings.max_ports,
                  "trusted_proxies": list(settings.trusted_proxies), "metrics": args.metrics or None})
    ctx.out.note(f"natlink reflector on {scheme}://{where}:{port} "
                 f"(token {f'required, {tokens} known' if tokens else 'off'}, {settings.rate:g} requests/min per "
                 f"address, {settings.max_ports} ports per request"
                 + (f", PROXY v2 from {', '.join(settings.trusted_proxies)}" if settings.trusted_proxies else "")
                 + (f", metrics on {args.metrics}" if settings.metrics else "") + ")")
    if not settings.tls_cert:
        log.warning("serving plain HTTP (--insecure-http): tokens and answers cross the network in clear text")
    asyncio.run(_serve(server))
    return 0


async def _serve(server) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.serve(stop)
