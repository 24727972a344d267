"""NAT-PMP and PCP result codes: one table shape, one way to turn a code into a MappingError."""

from __future__ import annotations

from natlink.portmap.base import MappingError

# code -> (the RFC's name for it, what it means here, how to fix it)
ResultTable = dict[int, tuple[str, str, str]]

NO_EXTERNAL_FIX = "run `natlink ip`; ask the ISP for a public IPv4 address if the router is behind CGNAT"
NO_RESOURCES_FIX = "remove unused mappings or reboot the router"
OTHER_PORT_FIX = "free the port, choose another external_port, or set allow_other_port = true"


def result_error(table: ResultTable, result: int, *, mapper: str, what: str = "",
                 unknown: str = "unknown result code") -> MappingError:
    """The MappingError for a non-zero result; ``what`` names the request ("TCP 8080")."""
    name, cause, fix = table.get(result, (f"result {result}", f"the gateway answered with {unknown} {result}",
                                          "see the router's log"))
    return MappingError(result, f"{cause} ({name}){': ' + what if what else ''}", fix, mapper=mapper)
