"""Build a throwaway home network (a LAN host, a router running the real miniupnpd with NAT, an "internet" host
with a DNS server and natlink's reflector) and run natlink's whole chain in it: router found, WAN address public,
port mapping created, DDNS name published and resolved, outside connect verified; then an ISP address change
and a router reboot, with natlink following and repairing them. Needs root and Linux.

With -c/--config FILE: the same sandbox, running your own mappings and DDNS names (published to the sandbox's
DNS server, never to your provider) so you can see what your config would do."""

from __future__ import annotations

import argparse

from natlink.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keep", action="store_true",
                        help="leave the sandbox up afterwards and print how to enter each host")
    parser.add_argument("--down", action="store_true", help="tear down the sandboxes left by --keep")
    parser.add_argument("--scenario", choices=("home", "cgnat-ipv6"), default="home",
                        help="home: the whole chain over IPv4 (default); cgnat-ipv6: no public IPv4, reachable over "
                             "IPv6 (pinhole, AAAA, outside connect, prefix change)")


def run(ctx, args: argparse.Namespace) -> int:
    if args.keep and args.down:
        raise UsageError("--keep and --down cannot be combined", "use --keep to leave a sandbox up, --down to remove it")
    from natlink.demo.entry import run_demo, run_down  # the lab is loaded only here, never by other commands

    if args.down:
        if ctx.config_path:
            raise UsageError("--down takes no config", "run `natlink demo --down` alone")
        return run_down(ctx.out)
    if args.scenario == "cgnat-ipv6":
        if args.keep or ctx.config_path:
            raise UsageError("--scenario cgnat-ipv6 takes no --keep and no config", "run it alone")
        from natlink.demo.entry import run_ipv6_demo

        return run_ipv6_demo(ctx.out)
    return run_demo(ctx.out, ctx.config if ctx.config_path else None, keep=args.keep)
