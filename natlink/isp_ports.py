"""Inbound ports residential ISPs commonly filter, and the high port to use instead (as 3390 stands in for 3389).

One table for the doctor's warning and the prober's diagnosis, so both suggest the same port.
"""

from __future__ import annotations

# port -> what it is (worms, spam and open servers made ISPs filter these)
ISP_BLOCKED: dict[int, str] = {
    21: "FTP", 23: "Telnet", 25: "SMTP", 53: "DNS", 80: "HTTP", 110: "POP3", 119: "NNTP", 135: "MS RPC",
    136: "NetBIOS", 137: "NetBIOS", 138: "NetBIOS", 139: "NetBIOS", 143: "IMAP", 161: "SNMP", 162: "SNMP",
    443: "HTTPS (on some plans)", 445: "SMB", 1433: "MS SQL", 1434: "MS SQL", 1900: "SSDP/UPnP",
}
_SUGGEST = {80: 8080, 443: 8443, 21: 2121, 25: 2525, 23: 2323}


def suggest_port(port: int) -> int:
    """A high external port for a blocked one."""
    return _SUGGEST.get(port, port + 10000 if port + 10000 <= 65535 else 40000 + port % 10000)
