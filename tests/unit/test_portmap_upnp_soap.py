"""natlink's UPnP SOAP codec (natlink.portmap.upnp_soap), on answers as miniupnpd 2.3.1 sends them (captured
from the lab router), faults, garbage and hostile XML: SoapFault or SoapFailed, never another exception."""

from __future__ import annotations

import pytest

from natlink.portmap.base import Mapping
from natlink.portmap.upnp_errors import ErrorContext, refusal
from natlink.portmap.upnp_soap import HTTP_ERROR, INVALID_RESPONSE, SoapFailed, SoapFault, envelope, parse_answer

S = "urn:schemas-upnp-org:service:WANIPConnection:2"
ENV = ('<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
       's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>{}</s:Body></s:Envelope>\r\n')
STATUS = ENV.format(f'<u:GetStatusInfoResponse xmlns:u="{S}"><NewConnectionStatus>Connected</NewConnectionStatus>'
                    '<NewLastConnectionError>ERROR_NONE</NewLastConnectionError><NewUptime>0</NewUptime>'
                    '</u:GetStatusInfoResponse>')
FAULT = ENV.format('<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>'
                   '<UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>{}</errorCode>'
                   '<errorDescription>{}</errorDescription></UPnPError></detail></s:Fault>')


def test_an_answer_gives_its_output_arguments():
    assert parse_answer(200, STATUS.encode(), "GetStatusInfo") == {
        "NewConnectionStatus": "Connected", "NewLastConnectionError": "ERROR_NONE", "NewUptime": "0"}


@pytest.mark.parametrize("code, text, words", [
    (718, "ConflictInMappingEntry", "already mapped"),
    (725, "OnlyPermanentLeasesSupported", "only accepts permanent leases"),
    (606, "Action not authorized", "UPnP policy does not allow"),
    (501, "Action Failed", "table may be full"),
    (714, "NoSuchEntryInArray", "not in the router's table"),
])
def test_faults_keep_their_code_and_explanation(code, text, words):
    with pytest.raises(SoapFault) as fault:
        parse_answer(500, FAULT.format(code, text).encode(), "AddPortMapping")
    assert (fault.value.code, fault.value.description) == (code, text)
    err = refusal(fault.value.code, fault.value.description,
                  ErrorContext("add", Mapping("tcp", 3390, "10.0.1.201", 3389), "10.0.1.201", 3600))
    assert err.code == code and words in err.message


@pytest.mark.parametrize("status, body, code", [
    (200, b"\x00\xff garbage", INVALID_RESPONSE),
    (200, ENV.format("<u:SomethingElse/>").encode(), INVALID_RESPONSE),  # not the action's answer
    (500, b"<html>Internal Server Error</html>", HTTP_ERROR),  # an HTTP error without a UPnP fault
    (401, b"", HTTP_ERROR),
    (200, b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', INVALID_RESPONSE),
    (200, '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'.encode("utf-16"),
     INVALID_RESPONSE),
])
def test_garbage_and_hostile_answers_are_soap_failed(status, body, code):
    with pytest.raises(SoapFailed) as failed:
        parse_answer(status, body, "GetStatusInfo")
    assert failed.value.code == code


def test_a_non_numeric_error_code_is_a_fault_without_a_code():
    with pytest.raises(SoapFault) as fault:
        parse_answer(500, FAULT.format("x", "ConflictInMappingEntry").encode(), "AddPortMapping")
    assert fault.value.code is None
    assert refusal(None, fault.value.description).code == 718  # the binding's text table still names it


def test_envelope_escapes_arguments():
    body = envelope(S, "AddPortMapping", [("NewPortMappingDescription", "a<b&c"), ("NewExternalPort", 3390)])
    assert b"<NewPortMappingDescription>a&lt;b&amp;c</NewPortMappingDescription>" in body
    assert f'<u:AddPortMapping xmlns:u="{S}">'.encode() in body
