"""easyDNS dynamic DNS: the dyndns2 request (GET /dyn/dyndns.php?hostname=…&myip=…, basic auth with the
account name and its dynamic DNS token) with easyDNS's own answer words.

easyDNS accepts one update per name every 10 minutes (the registry's min_interval; sooner it answers
TOOSOON) and takes one address per request (A or AAAA by its form), so each family is its own request.
"""

from __future__ import annotations

from natlink.ddns.base import ProviderResult, fatal, success, transient
from natlink.ddns.dyndns2 import Dyndns2Provider, parse_answer

TOO_SOON = 600.0

_WORDS = {
    "NOACCESS": ("badauth", False, "the username or dynamic DNS token was refused; fix username / password_file"),
    "NOSERVICE": ("noservice", True, "dynamic DNS is not switched on for this name's domain at easyDNS"),
    "ILLEGAL": ("illegal", False, "easyDNS refused the request as illegal input; please report this as a natlink "
                                  "bug"),
}


def parse_easydns(status: int, body: str, sent: dict[int, str], hostname: str,
                  retry_after: str | None = None) -> ProviderResult:
    """Map one easyDNS answer to a typed outcome (pure); HTTP-level failures as for any dyndns2 server."""
    words = body.strip().split()
    word = words[0].upper() if words and status == 200 else ""
    if word == "NOERROR":
        return success("good", f"{hostname}: updated ({', '.join(sent.values())})")
    if word == "TOOSOON":
        return transient("toosoon", f"easyDNS answered TOOSOON for {hostname}: at most one update per 10 minutes; "
                                    "natlink waits", retry_after=TOO_SOON)
    if word in _WORDS:
        outcome, per_name, advice = _WORDS[word]
        return fatal(outcome, f"easyDNS answered {word} for {hostname}: {advice}", per_name=per_name)
    return parse_answer(status, body, sent, "easyDNS", hostname, retry_after)


class EasydnsProvider(Dyndns2Provider):
    name = "easydns"

    def parse(self, status: int, body: str, sent: dict[int, str], hostname: str,
              retry_after: str | None) -> ProviderResult:
        return parse_easydns(status, body, sent, hostname, retry_after)
