"""natlink's network-namespace test bed ("the lab").

Used by lab tests and by ``natlink demo``; never imported by natlink's normal commands.

    from natlink.lab import Lab, LabError, check_prerequisites
    with Lab(scenario="normal") as lab:
        lab.run("lan", ["upnpc", "-u", lab.igd_url, "-s"])
"""

from natlink.lab.errors import LabError
from natlink.lab.lab import HOSTS, SCENARIOS, Lab
from natlink.lab.prereq import check_prerequisites
from natlink.lab.services import TcpService

__all__ = ["HOSTS", "SCENARIOS", "Lab", "LabError", "TcpService", "check_prerequisites"]
