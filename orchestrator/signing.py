"""AK/SK request signing, SDK-HMAC-SHA256 (contract §6), for the client and for the simulator's gateway.

Pure: every function here is a function of its arguments, the clock included. The steps are exposed one by
one (`canonical_uri`, `canonical_query_string`, `canonical_headers`, `payload_hash`, `canonical_request`,
`string_to_sign`, `signature`) because the client signs with them and the simulator verifies with them.

Where the contract leaves a choice open we do what the official Python SDK (huaweicloudsdkcore 3.1.219,
`signer/signer.py`) does, so that our Authorization header is byte-for-byte the SDK's:

* query pairs are sorted on their *decoded* text (code point order), then encoded;
* an empty body hashes to the empty-string SHA-256 even when `X-Sdk-Content-Sha256` is set;
* header values are trimmed with `str.strip()`; inner whitespace is kept as is;
* every header is signed except names containing `_`.

The secret key is only ever an HMAC key here: no message, repr or exception built in this module holds it.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import quote, unquote, urlsplit

__all__ = [
    "ALGORITHM",
    "CONTENT_SHA256_HEADER",
    "DATE_FORMAT",
    "DATE_HEADER",
    "EMPTY_BODY_SHA256",
    "MAX_SKEW",
    "VerifyFailure",
    "VerifyResult",
    "authorization_header",
    "canonical_headers",
    "canonical_query_string",
    "canonical_request",
    "canonical_uri",
    "format_sdk_date",
    "parse_authorization",
    "parse_sdk_date",
    "payload_hash",
    "sign_request",
    "signature",
    "signed_header_names",
    "split_query",
    "string_to_sign",
    "verify_request",
]

ALGORITHM: Final = "SDK-HMAC-SHA256"
DATE_HEADER: Final = "X-Sdk-Date"
DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
CONTENT_SHA256_HEADER: Final = "X-Sdk-Content-Sha256"
EMPTY_BODY_SHA256: Final = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
MAX_SKEW: Final = timedelta(minutes=15)

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_AUTHORIZATION_RE: Final = re.compile(
    rf"{re.escape(ALGORITHM)} Access=(?P<access>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-fA-F]{64})"
)


# ---------------------------------------------------------------- the date


def format_sdk_date(now: datetime) -> str:
    """`now` as an X-Sdk-Date value (UTC, `YYYYMMDDTHHMMSSZ`); `now` must be timezone-aware."""
    if now.tzinfo is None:
        raise ValueError("the signing clock must return a timezone-aware datetime")
    return now.astimezone(UTC).strftime(DATE_FORMAT)


def parse_sdk_date(value: str) -> datetime:
    """An X-Sdk-Date value as an aware UTC datetime; ValueError if it is not `YYYYMMDDTHHMMSSZ`."""
    try:
        parsed = datetime.strptime(value.strip(), DATE_FORMAT)
    except ValueError:
        raise ValueError(f"{DATE_HEADER} {value!r} is not in the form YYYYMMDDTHHMMSSZ") from None
    return parsed.replace(tzinfo=UTC)


# ---------------------------------------------------------------- the canonical request, step by step


def _encode(text: str) -> str:
    # RFC 3986: only A-Za-z0-9 and -._~ stay as they are; everything else is %XX of its UTF-8 bytes.
    return quote(text, safe="~")


def canonical_uri(path: str) -> str:
    """The path percent-decoded, each segment re-encoded, always ending in `/` (an empty path is `/`).

    An encoded slash (`%2F`) becomes a segment separator, as in the SDK.
    """
    encoded = "/".join(_encode(segment) for segment in unquote(path).split("/"))
    return encoded if encoded.endswith("/") else encoded + "/"


def canonical_query_string(pairs: Iterable[tuple[str, str]]) -> str:
    """Decoded `(key, value)` pairs sorted by key then value, each encoded, joined as `k=v&k=v`.

    This is also the form the SDK puts on the request line, so the client can build its URLs with it.
    """
    return "&".join(f"{_encode(key)}={_encode(value)}" for key, value in sorted(pairs))


def split_query(query: str) -> list[tuple[str, str]]:
    """The decoded `(key, value)` pairs of a raw query string; a bare `key` has the value `""`.

    A literal `+` is refused: some servers read it as a space and others as a plus, so a signature over it
    would depend on the server. Encode it as `%2B` (and a space as `%20`), as `canonical_query_string` does.
    """
    if "+" in query:
        raise ValueError("a query string to be signed must encode '+' as %2B and spaces as %20")
    pairs = []
    for item in query.split("&"):
        if item:
            key, _, value = item.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return pairs


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    """The SDK's choice: every header name lowercased and sorted, except names containing `_`."""
    return sorted(name.lower() for name in headers if "_" not in name)


def canonical_headers(headers: Mapping[str, str], signed_headers: Sequence[str]) -> str:
    """`name:trimmed value\\n` for each signed header, in the given order; KeyError names a missing one."""
    by_name = _lowercase_keys(headers)
    return "".join(f"{name}:{by_name[name.lower()].strip()}\n" for name in signed_headers)


def payload_hash(body: bytes, headers: Mapping[str, str]) -> str:
    """Hex SHA-256 of the body; a non-empty body's hash may be replaced by `X-Sdk-Content-Sha256`."""
    if not body:
        return EMPTY_BODY_SHA256  # the SDK ignores X-Sdk-Content-Sha256 for an empty body
    declared = _lowercase_keys(headers).get(CONTENT_SHA256_HEADER.lower())
    return declared if declared else hashlib.sha256(body).hexdigest()


def canonical_request(
    method: str,
    path: str,
    query_pairs: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    signed_headers: Sequence[str] | None = None,
) -> str:
    """The six lines that get hashed; `headers` must already hold Host and X-Sdk-Date.

    `signed_headers` defaults to the SDK's choice (`signed_header_names`); a verifier passes the list
    named in the Authorization header.
    """
    signed = list(signed_header_names(headers) if signed_headers is None else signed_headers)
    return "\n".join(
        (
            method.upper(),
            canonical_uri(path),
            canonical_query_string(query_pairs),
            canonical_headers(headers, signed),  # ends in "\n": a blank line precedes the signed list
            ";".join(signed),
            payload_hash(body, headers),
        )
    )


def string_to_sign(canonical: str, sdk_date: str) -> str:
    """`SDK-HMAC-SHA256`, the X-Sdk-Date value and the hex SHA-256 of the canonical request, one per line."""
    return f"{ALGORITHM}\n{sdk_date}\n{hashlib.sha256(canonical.encode()).hexdigest()}"


def signature(string: str, sk: str) -> str:
    """Hex HMAC-SHA256 of the string to sign, keyed with the secret key itself (no key derivation)."""
    try:
        key = sk.encode()
    except UnicodeEncodeError:
        raise ValueError("the secret key is not valid text") from None  # the codec error would quote it
    return hmac.new(key, string.encode(), hashlib.sha256).hexdigest()


def authorization_header(ak: str, signed_headers: Sequence[str], sig: str) -> str:
    """The Authorization value: `SDK-HMAC-SHA256 Access=…, SignedHeaders=a;b, Signature=…`."""
    return f"{ALGORITHM} Access={ak}, SignedHeaders={';'.join(signed_headers)}, Signature={sig}"


# ---------------------------------------------------------------- the client side


def sign_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    ak: str,
    sk: str,
    now: datetime,
) -> dict[str, str]:
    """The headers to send: `headers` (values trimmed) plus X-Sdk-Date, Host and Authorization.

    An X-Sdk-Date or Host already in `headers` is kept (so a retry that wants a fresh timestamp must not pass
    the previous X-Sdk-Date back in); an Authorization already there is replaced. Every header is signed
    unless its name contains `_`: add X-Security-Token (temporary keys) to `headers` to have it signed.
    """
    if not ak or not sk:
        raise ValueError("both the access key and the secret key must be non-empty")
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"cannot sign a request to {_without_query(url)!r}: need an absolute http(s) URL")
    out = _unique_headers(headers)
    out = {name: value.strip() for name, value in out.items() if name.lower() != "authorization"}
    present = {name.lower() for name in out}
    if DATE_HEADER.lower() in present:
        sdk_date = format_sdk_date(parse_sdk_date(_lowercase_keys(out)[DATE_HEADER.lower()]))
    else:
        sdk_date = out[DATE_HEADER] = format_sdk_date(now)
    if "host" not in present:
        out["Host"] = _host_header(parts.scheme, parts.netloc, parts.port)

    signed = signed_header_names(out)
    canonical = canonical_request(method, parts.path, split_query(parts.query), out, body, signed)
    sig = signature(string_to_sign(canonical, sdk_date), sk)
    out["Authorization"] = authorization_header(ak, signed, sig)
    return out


def _host_header(scheme: str, netloc: str, port: int | None) -> str:
    # The netloc as written (IPv6 brackets, case), never user:password@, and its port only if non-default.
    host = netloc.rpartition("@")[2]
    return host.rsplit(":", 1)[0] if port == _DEFAULT_PORTS[scheme] else host


def _without_query(url: str) -> str:
    # Error messages name the endpoint only: a query string could carry something private.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


# ---------------------------------------------------------------- the server side


def parse_authorization(value: str) -> tuple[str, tuple[str, ...], str]:
    """`(access key, signed header names, signature)` from an Authorization value; ValueError if malformed."""
    match = _AUTHORIZATION_RE.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"the Authorization header is not of the form '{ALGORITHM} Access=…, SignedHeaders=…'")
    signed = tuple(match["signed"].split(";"))
    if not all(signed):
        raise ValueError("the Authorization header names an empty signed header")
    return match["access"], signed, match["signature"].lower()


class VerifyFailure(enum.StrEnum):
    """Why the gateway would refuse a signed request."""

    MISSING_AUTHORIZATION = "missing Authorization header"
    BAD_FORMAT = "malformed Authorization header"
    UNKNOWN_ACCESS_KEY = "unknown access key"
    MISSING_DATE = "missing X-Sdk-Date header"
    BAD_DATE = "malformed X-Sdk-Date header"
    DATE_NOT_SIGNED = "X-Sdk-Date is not among the signed headers"
    SKEWED = "X-Sdk-Date is too far from the server's time"
    MISSING_SIGNED_HEADER = "a signed header is missing from the request"
    SIGNATURE_MISMATCH = "signature mismatch"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The gateway's verdict on one request; `access_key` is set once the Authorization header parses."""

    ok: bool
    access_key: str | None = None
    reason: VerifyFailure | None = None


def verify_request(
    method: str,
    path: str,
    query_pairs: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret_lookup: Callable[[str], str | None],
    now: datetime,
    max_skew: timedelta = MAX_SKEW,
) -> VerifyResult:
    """Check a request's signature as the API gateway does; `query_pairs` are decoded, `path` is raw."""
    by_name = _lowercase_keys(headers)
    value = by_name.get("authorization")
    if value is None:
        return VerifyResult(ok=False, reason=VerifyFailure.MISSING_AUTHORIZATION)
    try:
        access, signed, claimed = parse_authorization(value)
    except ValueError:
        return VerifyResult(ok=False, reason=VerifyFailure.BAD_FORMAT)

    def refuse(reason: VerifyFailure) -> VerifyResult:
        return VerifyResult(ok=False, access_key=access, reason=reason)

    sk = secret_lookup(access)
    if sk is None:
        return refuse(VerifyFailure.UNKNOWN_ACCESS_KEY)
    sdk_date = by_name.get(DATE_HEADER.lower())
    if sdk_date is None:
        return refuse(VerifyFailure.MISSING_DATE)
    try:
        signed_at = parse_sdk_date(sdk_date)
    except ValueError:
        return refuse(VerifyFailure.BAD_DATE)
    if DATE_HEADER.lower() not in (name.lower() for name in signed):
        return refuse(VerifyFailure.DATE_NOT_SIGNED)
    if abs(now - signed_at) > max_skew:
        return refuse(VerifyFailure.SKEWED)
    if any(name.lower() not in by_name for name in signed):
        return refuse(VerifyFailure.MISSING_SIGNED_HEADER)

    canonical = canonical_request(method, path, query_pairs, by_name, body, signed)
    expected = signature(string_to_sign(canonical, format_sdk_date(signed_at)), sk)
    if not hmac.compare_digest(expected, claimed):
        return refuse(VerifyFailure.SIGNATURE_MISMATCH)
    return VerifyResult(ok=True, access_key=access)


# ---------------------------------------------------------------- helpers


def _lowercase_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _unique_headers(headers: Mapping[str, str]) -> dict[str, str]:
    seen: set[str] = set()
    for name in headers:
        if name.lower() in seen:
            raise ValueError(f"header {name!r} is given twice (names are case-insensitive)")
        seen.add(name.lower())
    return dict(headers)
