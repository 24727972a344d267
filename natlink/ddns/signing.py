"""Request signatures of the two cloud APIs that sign instead of sending a token: pure functions.

- Alibaba Cloud ACS3-HMAC-SHA256 ("V3 request structure and signature"; the HMAC-SHA1 V2 scheme is
  deprecated there): hex HMAC-SHA256 over "ACS3-HMAC-SHA256\\n" + hex SHA-256 of the canonical request.
- Tencent Cloud TC3-HMAC-SHA256 (API 3.0 "Signature v3"): a key derived per day and service, then
  hex HMAC-SHA256 over algorithm, timestamp, credential scope and the hashed canonical request.

Both are checked in tests/unit against the worked examples their documentation publishes.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone
from urllib.parse import quote

ACS3 = "ACS3-HMAC-SHA256"
TC3 = "TC3-HMAC-SHA256"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def rfc3986(text: str) -> str:
    """Percent-encode everything but A-Z a-z 0-9 - _ . ~ (space is %20, never +), as both clouds require."""
    return quote(text, safe="-_.~")


def canonical_query(params: dict[str, str]) -> str:
    """Parameters sorted by name, names and values encoded; also the query string natlink sends."""
    return "&".join(f"{rfc3986(k)}={rfc3986(v)}" for k, v in sorted(params.items()))


def _canonical_headers(headers: dict[str, str]) -> tuple[str, str]:
    lowered = {k.lower(): v.strip() for k, v in headers.items()}
    names = sorted(lowered)
    return "".join(f"{n}:{lowered[n]}\n" for n in names), ";".join(names)


def acs3_authorization(access_key_id: str, secret: str, method: str, path: str, query: str,
                       headers: dict[str, str], payload_hash: str) -> str:
    """The Authorization header for an Alibaba Cloud request; `headers` are the ones to sign (host, x-acs-*)."""
    canonical, signed = _canonical_headers(headers)
    request = "\n".join([method.upper(), path or "/", query, canonical, signed, payload_hash])
    to_sign = f"{ACS3}\n{sha256_hex(request.encode())}"
    signature = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{ACS3} Credential={access_key_id},SignedHeaders={signed},Signature={signature}"


def tc3_authorization(secret_id: str, secret_key: str, service: str, timestamp: int, method: str,
                      query: str, headers: dict[str, str], payload: bytes) -> str:
    """The Authorization header for a Tencent Cloud API 3.0 request; `headers` are the ones to sign
    (content-type and host at least). The date in the scope is the UTC date of `timestamp`."""
    canonical, signed = _canonical_headers(headers)
    # TC3 lower-cases header values too (the documented example signs "x-tc-action:describeinstances").
    canonical = canonical.lower()
    request = "\n".join([method.upper(), "/", query, canonical, signed, sha256_hex(payload)])
    date = datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d")
    scope = f"{date}/{service}/tc3_request"
    to_sign = f"{TC3}\n{timestamp}\n{scope}\n{sha256_hex(request.encode())}"
    key = _hmac(_hmac(_hmac(("TC3" + secret_key).encode(), date), service), "tc3_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{TC3} Credential={secret_id}/{scope}, SignedHeaders={signed}, Signature={signature}"
