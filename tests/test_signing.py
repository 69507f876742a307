"""SDK-HMAC-SHA256 signing: the SDK's own vectors, agreement with the SDK's signer, the gateway's check."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.signing import (
    EMPTY_BODY_SHA256,
    VerifyFailure,
    VerifyResult,
    authorization_header,
    canonical_query_string,
    canonical_request,
    canonical_uri,
    parse_authorization,
    sign_request,
    signature,
    split_query,
    string_to_sign,
    verify_request,
)

REPO = Path(__file__).resolve().parents[1]
# A byte-for-byte copy of shared/fixtures/signing-vectors.json, so the tests need nothing outside the repo.
VECTORS_FILE = REPO / "tests" / "fixtures" / "signing-vectors.json"

AK = "FAKEAKEXAMPLE0000000"
SK = "FAKESKEXAMPLE00000000000000000000000000"
HOST = "gaussdb.cn-north-4.myhuaweicloud.com"
NOW = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)


def _load_vectors() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["vectors"]
    return vectors


VECTORS = _load_vectors()


def _vector_url(inputs: dict[str, Any]) -> str:
    query = canonical_query_string([tuple(pair) for pair in inputs["query_params"]])
    return f"https://{inputs['host']}{inputs['path']}" + (f"?{query}" if query else "")


# ---------------------------------------------------------------- the SDK's vectors


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_canonical_request_and_string_to_sign(vector: dict[str, Any]) -> None:
    """Each SDK vector's canonical request and string to sign are reproduced exactly."""
    inputs = vector["inputs"]
    headers = {**inputs["headers_before_signing"], "Host": inputs["host"]}
    pairs = [tuple(pair) for pair in inputs["query_params"]]
    canonical = canonical_request(inputs["method"], inputs["path"], pairs, headers, inputs["body"].encode())
    assert canonical == vector["canonical_request"]
    date = inputs["headers_before_signing"]["X-Sdk-Date"]
    assert string_to_sign(canonical, date) == vector["string_to_sign"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_signed_headers(vector: dict[str, Any]) -> None:
    """Signing each SDK vector's request yields exactly the headers the SDK sent, Authorization included."""
    inputs = vector["inputs"]
    headers = sign_request(
        inputs["method"],
        _vector_url(inputs),
        inputs["headers_before_signing"],
        inputs["body"].encode(),
        ak=inputs["ak"],
        sk=inputs["sk"],
        now=NOW,  # ignored: the vectors carry their own X-Sdk-Date
    )
    assert headers["Authorization"] == vector["authorization"]
    assert headers == vector["sdk_headers_after_signing"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_request_line_is_the_canonical_query(vector: dict[str, Any]) -> None:
    """Building the URL with `canonical_query_string` gives the request line the SDK sent."""
    parts = urlsplit(_vector_url(vector["inputs"]))
    sent = parts.path + (f"?{parts.query}" if parts.query else "")
    assert sent == vector["sdk_uri_sent"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_verifies(vector: dict[str, Any]) -> None:
    """The gateway check accepts each SDK vector's request as the SDK sent it."""
    inputs = vector["inputs"]
    result = verify_request(
        inputs["method"],
        inputs["path"],
        [tuple(pair) for pair in inputs["query_params"]],
        vector["sdk_headers_after_signing"],
        inputs["body"].encode(),
        secret_lookup={inputs["ak"]: inputs["sk"]}.get,
        now=datetime(2024, 1, 1, 0, 10, tzinfo=UTC),
    )
    assert result == VerifyResult(ok=True, access_key=inputs["ak"])


# ---------------------------------------------------------------- the steps


def test_date_is_added_from_the_clock_in_utc() -> None:
    """Without X-Sdk-Date, the injected clock's instant is written in UTC as YYYYMMDDTHHMMSSZ."""
    plus_eight = datetime(2024, 1, 1, 8, 30, 5, tzinfo=UTC).astimezone(timezone(timedelta(hours=8)))
    headers = sign_request("GET", f"https://{HOST}/v3/x", {}, b"", ak=AK, sk=SK, now=plus_eight)
    assert headers["X-Sdk-Date"] == "20240101T083005Z"


def test_naive_clock_is_refused() -> None:
    """A naive datetime is refused rather than guessed to be UTC."""
    with pytest.raises(ValueError, match="timezone-aware"):
        sign_request("GET", f"https://{HOST}/", {}, b"", ak=AK, sk=SK, now=datetime(2024, 1, 1))


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://example.com:443/a", "example.com"),
        ("http://example.com:80/a", "example.com"),
        ("http://127.0.0.1:39015/a", "127.0.0.1:39015"),
        ("https://[::1]:8443/a", "[::1]:8443"),
        ("https://user:pw@example.com/a", "example.com"),
    ],
)
def test_host_header_keeps_only_a_non_default_port(url: str, host: str) -> None:
    """Host is the URL's netloc without credentials and with its port only when it is not the default."""
    assert sign_request("GET", url, {}, b"", ak=AK, sk=SK, now=NOW)["Host"] == host


def test_existing_authorization_is_replaced_and_values_trimmed() -> None:
    """Re-signing replaces a previous Authorization, and header values are sent trimmed as they are signed."""
    first = sign_request("GET", f"https://{HOST}/a", {"X-Project-Id": " p1 "}, b"", ak=AK, sk=SK, now=NOW)
    again = sign_request("GET", f"https://{HOST}/a", first, b"", ak=AK, sk=SK, now=NOW)
    assert again == first
    assert first["X-Project-Id"] == "p1"
    assert "authorization" not in parse_authorization(first["Authorization"])[1]


def test_case_insensitive_duplicate_headers_are_refused() -> None:
    """Two headers whose names differ only in case are ambiguous and refused."""
    with pytest.raises(ValueError, match="twice"):
        sign_request("GET", f"https://{HOST}/", {"X-A": "1", "x-a": "2"}, b"", ak=AK, sk=SK, now=NOW)


def test_literal_plus_in_query_is_refused() -> None:
    """A raw '+' in the query is refused because servers disagree on whether it means a space."""
    with pytest.raises(ValueError, match="%2B"):
        sign_request("GET", f"https://{HOST}/a?q=a+b", {}, b"", ak=AK, sk=SK, now=NOW)


def test_split_query_decodes_and_keeps_bare_keys() -> None:
    """Query items are percent-decoded, a bare key has an empty value and empty items are skipped."""
    assert split_query("a=%20x&b&&c=1%3D2") == [("a", " x"), ("b", ""), ("c", "1=2")]


def test_canonical_uri_decodes_then_encodes_each_segment() -> None:
    """The canonical URI re-encodes decoded segments, turns %2F into a separator and ends in a slash."""
    assert canonical_uri("/a b/%7Ec%2Fd/é") == "/a%20b/~c/d/%C3%A9/"
    assert canonical_uri("") == "/"
    assert canonical_uri("/x/") == "/x/"


def test_content_sha256_header_applies_to_non_empty_bodies_only() -> None:
    """X-Sdk-Content-Sha256 replaces the body hash, except for an empty body (as the SDK does)."""
    headers = {"Host": HOST, "X-Sdk-Date": "20240101T000000Z", "X-Sdk-Content-Sha256": "UNSIGNED-PAYLOAD"}
    assert canonical_request("PUT", "/", [], headers, b"x").endswith("\nUNSIGNED-PAYLOAD")
    assert canonical_request("PUT", "/", [], headers, b"").endswith("\n" + EMPTY_BODY_SHA256)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sign_request("GET", "ftp://h/", {}, b"", ak=AK, sk=SK, now=NOW), "absolute http"),
        (
            lambda: sign_request("GET", "https://h/", {"X-Sdk-Date": "soon"}, b"", ak=AK, sk=SK, now=NOW),
            "YYYYMMDDTHHMMSSZ",
        ),
        (lambda: sign_request("GET", f"https://{HOST}/", {}, b"", ak="", sk=SK, now=NOW), "non-empty"),
        (lambda: signature("x", SK + "\ud800"), "not valid text"),
    ],
)
def test_errors_never_contain_the_secret_key(call: Any, message: str) -> None:
    """Signing errors name the problem, never the secret key."""
    with pytest.raises(ValueError, match=message) as info:
        call()
    assert SK not in str(info.value)
    assert SK not in repr(info.value)


# ---------------------------------------------------------------- agreement with the official SDK

_SAFE_CHOICES = ["", "/", ":@!$'()*,;", "~-._"]
_TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=8)
_TOKEN = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1, max_size=12)
_RESERVED_HEADERS = {"host", "authorization", "x-sdk-date", "x-sdk-content-sha256", "content-type"}


@st.composite
def _paths(draw: st.DrawFn) -> str:
    segments = []
    for _ in range(draw(st.integers(0, 4))):
        pieces = draw(
            st.lists(
                st.one_of(
                    st.builds(quote, _TEXT, st.sampled_from(_SAFE_CHOICES)),
                    st.sampled_from(["%2F", "%2f", "%FF", "%20", "%7E", "%41", "+", "=", "&"]),
                ),
                max_size=3,
            )
        )
        segments.append("".join(pieces))
    return "/" + "/".join(segments) + draw(st.sampled_from(["", "/"]))


@st.composite
def _queries(draw: st.DrawFn) -> list[tuple[str, str]]:
    keys = draw(st.lists(st.one_of(_TEXT, st.sampled_from(["a", "A", "b", "[", "é", "id"])), max_size=5))
    pairs = [(key, draw(_TEXT)) for key in keys]
    repeat = draw(st.booleans())
    if pairs and repeat:
        pairs.append((pairs[0][0], draw(_TEXT)))  # a repeated key
    return pairs


def _query_string(pairs: list[tuple[str, str]], safe: str) -> str:
    # Any encoding that round-trips: not necessarily the canonical one.
    return "&".join(f"{quote(k, safe=safe)}={quote(v, safe=safe)}" for k, v in pairs)


@st.composite
def _headers(draw: st.DrawFn) -> dict[str, str]:
    names = draw(st.lists(_TOKEN, max_size=5, unique_by=str.lower))
    headers = {name: draw(_TEXT) for name in names if name.lower() not in _RESERVED_HEADERS}
    content_type = draw(st.sampled_from([None, "application/json", "application/json;charset=utf-8"]))
    if content_type:
        headers["Content-Type"] = content_type
    if draw(st.booleans()):
        headers["X-Sdk-Content-Sha256"] = draw(st.sampled_from(["UNSIGNED-PAYLOAD", "0" * 64]))
    if draw(st.booleans()):
        headers["X-Security-Token"] = draw(_TEXT)
    return headers


_requests = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["GET", "PUT", "POST", "DELETE", "PATCH", "get"]),
        "netloc": st.sampled_from([HOST, "127.0.0.1:39015", "[::1]:8443", "Example.COM"]),
        "path": _paths(),
        "pairs": _queries(),
        "query_safe": st.sampled_from(["", "/:@", "!$'()*,;"]),
        "headers": _headers(),
        "body": st.one_of(st.just(b""), st.binary(max_size=64)),
        "now": st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)),
        "ak": _TOKEN,
        "sk": st.text(st.characters(codec="utf-8"), min_size=1, max_size=40),
    }
)


def _url(req: dict[str, Any]) -> str:
    query = _query_string(req["pairs"], req["query_safe"])
    return f"https://{req['netloc']}{req['path']}" + (f"?{query}" if query else "")


def _sdk_authorization(req: dict[str, Any], sdk_date: str) -> str:
    # Given X-Sdk-Date, the SDK never reads its own clock (datetime.utcnow, deprecated since 3.12).
    request = SdkRequest(
        method=req["method"],
        schema="https",
        host=req["netloc"],
        resource_path=req["path"],
        query_params=list(req["pairs"]),
        header_params={**req["headers"], "X-Sdk-Date": sdk_date},
        body=req["body"],
    )
    signer = Signer(SimpleNamespace(ak=req["ak"], sk=req["sk"]))
    authorization: str = signer.sign(request).header_params["Authorization"]
    return authorization


@given(_requests)
def test_authorization_matches_the_sdk_signer(req: dict[str, Any]) -> None:
    """For random requests our Authorization header is exactly the official SDK signer's."""
    ours = sign_request(
        req["method"], _url(req), req["headers"], req["body"], ak=req["ak"], sk=req["sk"], now=req["now"]
    )
    assert ours["Authorization"] == _sdk_authorization(req, ours["X-Sdk-Date"])


@given(_queries())
def test_canonical_query_matches_the_sdk(pairs: list[tuple[str, str]]) -> None:
    """Our canonical query string (also the request line's) is the SDK's, repeated keys and all."""
    request = SdkRequest(query_params=list(pairs))
    assert canonical_query_string(pairs) == Signer.process_canonical_query_string(request)


# ---------------------------------------------------------------- the gateway's check


def _signed(
    method: str = "PUT",
    path: str = "/v3/p/instances/i/proxy/x/session-consistence",
    query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes = b'{"session_consistence": "true"}',
) -> tuple[str, str, list[tuple[str, str]], dict[str, str], bytes]:
    url = f"https://{HOST}{path}" + (f"?{query}" if query else "")
    base = headers if headers is not None else {"Content-Type": "application/json", "X-Project-Id": "p"}
    sent = sign_request(method, url, base, body, ak=AK, sk=SK, now=NOW)
    return method, path, split_query(query), sent, body


def _verify(
    request: tuple[str, str, list[tuple[str, str]], dict[str, str], bytes],
    *,
    now: datetime = NOW,
    keys: dict[str, str] | None = None,
) -> VerifyResult:
    method, path, pairs, headers, body = request
    lookup = (keys if keys is not None else {AK: SK}).get
    return verify_request(method, path, pairs, headers, body, secret_lookup=lookup, now=now)


def _failure(reason: VerifyFailure, access: str | None = AK) -> VerifyResult:
    return VerifyResult(ok=False, access_key=access, reason=reason)


@given(_requests)
def test_signed_requests_verify(req: dict[str, Any]) -> None:
    """Any request we sign passes the gateway check with the same key at the signing instant."""
    url = _url(req)
    headers = sign_request(req["method"], url, req["headers"], req["body"], ak=req["ak"], sk=req["sk"], now=req["now"])
    parts = urlsplit(url)
    result = verify_request(
        req["method"],
        parts.path,
        split_query(parts.query),
        headers,
        req["body"],
        secret_lookup={req["ak"]: req["sk"]}.get,
        now=req["now"],
    )
    assert result == VerifyResult(ok=True, access_key=req["ak"])


def test_verify_accepts_case_insensitive_header_names() -> None:
    """The gateway matches header names regardless of case, as HTTP does."""
    method, path, pairs, headers, body = _signed()
    lowered = {name.lower(): value for name, value in headers.items()}
    assert _verify((method, path, pairs, lowered, body)).ok


def test_verify_rejects_changed_body() -> None:
    """A body changed after signing fails with a signature mismatch."""
    method, path, pairs, headers, _ = _signed()
    assert _verify((method, path, pairs, headers, b"{}")) == _failure(VerifyFailure.SIGNATURE_MISMATCH)


def test_verify_rejects_changed_signed_header() -> None:
    """A signed header changed after signing fails with a signature mismatch."""
    method, path, pairs, headers, body = _signed()
    tampered = {**headers, "X-Project-Id": "other"}
    assert _verify((method, path, pairs, tampered, body)) == _failure(VerifyFailure.SIGNATURE_MISMATCH)


def test_verify_ignores_unsigned_headers() -> None:
    """Headers outside SignedHeaders (such as names with '_') may change without breaking the signature."""
    method, path, pairs, headers, body = _signed(headers={"X-Project-Id": "p", "x_trace": "1"})
    assert "x_trace" not in parse_authorization(headers["Authorization"])[1]
    assert _verify((method, path, pairs, {**headers, "x_trace": "2", "Accept": "*/*"}, body)).ok


def test_verify_rejects_changed_path_and_query() -> None:
    """A different path or query string fails with a signature mismatch."""
    method, path, pairs, headers, body = _signed(method="GET", path="/v3/p/jobs", query="id=1", body=b"")
    mismatch = _failure(VerifyFailure.SIGNATURE_MISMATCH)
    assert _verify((method, "/v3/q/jobs", pairs, headers, body)) == mismatch
    assert _verify((method, path, [("id", "2")], headers, body)) == mismatch
    assert _verify(("DELETE", path, pairs, headers, body)) == mismatch


def test_verify_rejects_removed_signed_header() -> None:
    """A header named in SignedHeaders but absent from the request is reported as such."""
    method, path, pairs, headers, body = _signed()
    del headers["X-Project-Id"]
    assert _verify((method, path, pairs, headers, body)) == _failure(VerifyFailure.MISSING_SIGNED_HEADER)


@pytest.mark.parametrize(
    ("offset", "ok"),
    [
        (timedelta(minutes=15), True),
        (-timedelta(minutes=15), True),
        (timedelta(minutes=15, seconds=1), False),
        (-timedelta(minutes=15, seconds=1), False),
    ],
)
def test_verify_enforces_fifteen_minutes_of_skew(offset: timedelta, ok: bool) -> None:
    """The server accepts X-Sdk-Date up to 15 minutes either side of its clock, and no further."""
    result = _verify(_signed(), now=NOW + offset)
    assert result == (VerifyResult(ok=True, access_key=AK) if ok else _failure(VerifyFailure.SKEWED))


def test_verify_rejects_wrong_secret() -> None:
    """A request signed with another secret key fails with a signature mismatch."""
    assert _verify(_signed(), keys={AK: SK + "x"}) == _failure(VerifyFailure.SIGNATURE_MISMATCH)


def test_verify_rejects_unknown_access_key() -> None:
    """An access key the server does not know is refused before anything else is checked."""
    assert _verify(_signed(), keys={}) == _failure(VerifyFailure.UNKNOWN_ACCESS_KEY)


def test_verify_rejects_missing_or_malformed_authorization() -> None:
    """No Authorization header, or one not in the SDK-HMAC-SHA256 form, is refused with no access key."""
    method, path, pairs, headers, body = _signed()
    without = {k: v for k, v in headers.items() if k != "Authorization"}
    missing = _failure(VerifyFailure.MISSING_AUTHORIZATION, None)
    assert _verify((method, path, pairs, without, body)) == missing
    for bad in [
        "Bearer x",
        headers["Authorization"].replace("SDK-HMAC-SHA256", "SDK-HMAC-SM3"),
        headers["Authorization"][:-1],
        headers["Authorization"].replace("SignedHeaders=", "SignedHeaders=;"),
    ]:
        result = _verify((method, path, pairs, {**headers, "Authorization": bad}, body))
        assert result == _failure(VerifyFailure.BAD_FORMAT, None)


def test_verify_rejects_missing_or_malformed_date() -> None:
    """A request without a parseable X-Sdk-Date is refused."""
    method, path, pairs, headers, body = _signed()
    without = {k: v for k, v in headers.items() if k != "X-Sdk-Date"}
    assert _verify((method, path, pairs, without, body)) == _failure(VerifyFailure.MISSING_DATE)
    bad = {**headers, "X-Sdk-Date": "2024-01-01T12:00:00Z"}
    assert _verify((method, path, pairs, bad, body)) == _failure(VerifyFailure.BAD_DATE)


def test_verify_requires_the_date_to_be_signed() -> None:
    """A correct signature that leaves X-Sdk-Date out of SignedHeaders is still refused."""
    date = "20240101T120000Z"
    headers = {"Host": HOST, "X-Sdk-Date": date, "X-Project-Id": "p"}
    signed = ["host", "x-project-id"]
    sig = signature(string_to_sign(canonical_request("GET", "/", [], headers, b"", signed), date), SK)
    headers["Authorization"] = authorization_header(AK, signed, sig)
    assert _verify(("GET", "/", [], headers, b"")) == _failure(VerifyFailure.DATE_NOT_SIGNED)


def test_parse_authorization_splits_the_three_fields() -> None:
    """parse_authorization returns the access key, the signed header names and the signature."""
    value = f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host;x-sdk-date, Signature={'A' * 64}"
    assert parse_authorization(value) == (AK, ("host", "x-sdk-date"), "a" * 64)


def test_verify_result_never_holds_the_secret() -> None:
    """The verdict's repr names the access key and the reason only."""
    result = _verify(_signed(), keys={AK: SK + "x"})
    assert SK not in repr(result)
    assert "signature mismatch" in str(result.reason)
