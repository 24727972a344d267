"""Run the outside dial-back helper used by `natlink probe` on a machine outside your network.

It connects back only to the address each request comes from (never to a host named in the request),
with an optional shared token, a per-client rate limit and a cap on ports per request. It also serves
GET /v1/hold (a held line-echo connection for `natlink doctor`'s NAT idle-timeout measurement).
See natlink/probe/reflector.py for the protocol and systemd/natlink-reflector.service to run it as a service.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from natlink.errors import NatlinkError, UsageError

log = logging.getLogger("natlink.reflector")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", metavar="ADDR:PORT", required=True,
                        help="address and port to serve on, e.g. 0.0.0.0:8765 or [::]:8765")
    parser.add_argument("--token-file", metavar="PATH",
                        help="require this shared token (Authorization: Bearer); e.g. $CREDENTIALS_DIRECTORY/token")
    parser.add_argument("--rate", type=float, default=30.0, metavar="N",
                        help="probe requests per minute per client address, also the burst (default 30; 0 = off)")
    parser.add_argument("--max-ports", type=int, default=32, metavar="N", help="ports per request (default 32)")
    parser.add_argument("--max-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="cap on the dial timeout a client may ask for (default 10)")
    parser.add_argument("--max-body", type=int, default=16384, metavar="BYTES", help="request body limit (default 16384)")
    parser.add_argument("--max-connections", type=int, default=512, metavar="N",
                        help="concurrent connections, each one thread (default 512)")
    parser.add_argument("--hold-per-client", type=int, default=64, metavar="N",
                        help="held /v1/hold connections per client address (default 64)")
    parser.add_argument("--hold-max", type=float, default=3600.0, metavar="SECONDS",
                        help="lifetime of a held connection (default 3600)")
    parser.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate (chain)")
    parser.add_argument("--tls-key", metavar="PEM", help="the certificate's private key (default: inside --tls-cert)")


def settings_from(args: argparse.Namespace):
    from natlink.config import parse_target
    from natlink.probe.reflector import ReflectorSettings
    from natlink.cleartext import is_loopback
    from natlink.secrets import SecretRef, SecretUnavailable, read_secret, warn_if_exposed

    listen = parse_target(args.listen)
    if listen is None and args.listen.endswith(":0"):  # port 0 = any free port (tests)
        listen = (args.listen.rsplit(":", 1)[0].strip("[]"), 0)
    if listen is None:
        port = args.listen.rsplit(":", 1)[-1]
        if ":" in args.listen and port.isdigit():
            raise UsageError(f"--listen {args.listen!r}: port {port} is out of range (1-65535)",
                             "e.g. --listen 0.0.0.0:8765")
        raise UsageError(f"--listen {args.listen!r} is not ADDR:PORT", "e.g. --listen 0.0.0.0:8765")
    for name in ("max_ports", "max_body", "max_connections", "hold_per_client"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1", "give a positive number")
    if args.rate < 0 or args.max_timeout <= 0 or args.hold_max <= 0:
        raise UsageError("--rate, --max-timeout and --hold-max must be positive", "give a positive number")
    if args.tls_key and not args.tls_cert:
        raise UsageError("--tls-key needs --tls-cert", "give both, or neither for plain HTTP")
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
    return ReflectorSettings(host=listen[0], port=listen[1], token=token, rate=args.rate, max_ports=args.max_ports,
                             max_body=args.max_body, max_timeout=args.max_timeout,
                             max_connections=args.max_connections, hold_per_client=args.hold_per_client,
                             hold_max=args.hold_max, tls_cert=args.tls_cert, tls_key=args.tls_key)


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
    host, port = server.server_address[:2]
    scheme = "https" if settings.tls_cert else "http"
    ctx.out.note(f"natlink reflector on {scheme}://{host}:{port} (token {'required' if settings.token else 'off'}, "
                 f"{settings.rate:g} probes/min per client, {settings.max_ports} ports per request)")
    stop = threading.Event()

    def _terminate(signum, frame):  # serve_forever must be shut down from another thread
        if not stop.is_set():
            stop.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _terminate)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
