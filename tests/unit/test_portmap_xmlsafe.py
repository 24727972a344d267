"""Router XML through defusedxml: a DTD is refused in any encoding (the old byte grep missed UTF-16)."""

from __future__ import annotations

import pytest

from natlink.portmap.xmlsafe import RouterXmlError, local, parse
from natlink.service.gena import GenaError, safe_xml

LAUGHS = '<?xml version="1.0" encoding="{enc}"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]><x>&b;</x>'


@pytest.mark.parametrize("enc", ["UTF-8", "UTF-16", "UTF-16-LE"])
def test_dtd_refused_in_any_encoding(enc):
    data = LAUGHS.format(enc=enc.replace("-LE", "LE")).encode(enc.lower())
    with pytest.raises(RouterXmlError):
        parse(data, 10_000)
    with pytest.raises(GenaError):  # the GENA listener's guard is the same parser now
        safe_xml(data, 10_000)


def test_plain_document_size_limit_and_garbage():
    root = parse(b'<e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0"><e:property/></e:propertyset>', 1000)
    assert local(root.tag) == "propertyset"
    with pytest.raises(RouterXmlError, match="larger than"):
        parse(b"<x>" + b"a" * 100 + b"</x>", 50)
    with pytest.raises(RouterXmlError, match="well-formed"):
        parse(b"<x><y></x>", 1000)
