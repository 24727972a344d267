"""Router XML (root descriptions, SOAP answers, GENA property sets) parsed with defusedxml: no DTD, no entity
expansion, no external references, whatever the encoding (a byte grep for "<!DOCTYPE" misses UTF-16)."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring


class RouterXmlError(ValueError):
    """An XML document from the router (or someone pretending) that natlink does not accept."""


def parse(data: bytes | str, limit: int) -> Element:
    """The document's root element; RouterXmlError when it is too large, not well-formed, or has a DTD."""
    if len(data) > limit:
        raise RouterXmlError(f"document larger than {limit} bytes")
    try:
        return fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise RouterXmlError(f"DOCTYPE/ENTITY declarations are not accepted ({type(exc).__name__})") from None
    except ParseError as exc:
        raise RouterXmlError(f"not well-formed XML: {exc}") from None


def local(tag: str) -> str:
    """"{urn:...}Name" -> "Name"."""
    return tag.rsplit("}", 1)[-1]
