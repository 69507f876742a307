"""Error answers of the simulated service, in the two body shapes of contract §8.

    ApiError            a DBS backend error: {"error_code", "error_msg"}
    ├── GatewayError    an API gateway (APIGW.*) error: the body also carries "request_id"
    └── IamError        an IAM (Keystone-style) error: {"error": {"code", "message", "title"}} [§7, INF]

They are raised by the pure layers (auth, service) and turned into HTTP answers by the server.
"""

from __future__ import annotations

from typing import Any, Final

from .config import BUSY_MESSAGE

PARAMETER_ERROR: Final = "DBS.200001"
REQUEST_IS_NULL: Final = "DBS.200006"
SERVER_ERROR: Final = "DBS.05000000"


class ApiError(Exception):
    """An error answer: HTTP status, error code and message, and extra response headers."""

    gateway = False

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.injected: str | None = None  # the fault name when the simulator injected this error

    def as_injected(self, fault: str) -> ApiError:
        self.injected = fault
        return self

    def body(self, request_id: str) -> dict[str, Any]:
        return {"error_code": self.code, "error_msg": self.message}


class GatewayError(ApiError):
    """An APIGW.* error: the gateway adds the request id to the body [DOC §8 apig-faq-0009]."""

    gateway = True

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, code, message, headers)
        self.absent = False  # True: the request carried no credential of this kind at all (see `AnyOf`)

    def body(self, request_id: str) -> dict[str, Any]:
        return {"error_msg": self.message, "error_code": self.code, "request_id": request_id}


class IamError(ApiError):
    """An answer of IAM's `POST /v3/auth/tokens`, in the Keystone error shape [INF §7].

    Huawei's IAM pages show `{"error": {"code": 401, "message": "...", "title": "Unauthorized"}}` for
    token errors (e.g. a locked account); the exact messages for a wrong password or scope are not published.
    """

    TITLES: Final = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden"}

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, str(status), message)

    def body(self, request_id: str) -> dict[str, Any]:
        return {"error": {"code": self.status, "message": self.message, "title": self.TITLES.get(self.status, "")}}


def parameter_error(detail: str = "") -> ApiError:
    return ApiError(400, PARAMETER_ERROR, f"Parameter error.{' ' + detail if detail else ''}")


def request_is_null() -> ApiError:
    return ApiError(400, REQUEST_IS_NULL, "The request is null.")


def server_error() -> ApiError:
    return ApiError(500, SERVER_ERROR, "server error.")


def busy(code: str) -> ApiError:
    return ApiError(409, code, BUSY_MESSAGE)


def api_not_found() -> GatewayError:
    return GatewayError(404, "APIGW.0101", "The API does not exist or has not been published in the environment")


# [§8 APIGW.0201] the gateway's refusals of requests it cannot or will not read; 494 is nginx's "headers too large"
TOO_LARGE: Final[dict[int, str]] = {
    413: "Request entity too large",
    414: "Request URI too large",
    494: "Request headers too large",
}


def too_large(status: int) -> GatewayError:
    """413/414/494 APIGW.0201; the message never quotes the request."""
    return GatewayError(status, "APIGW.0201", TOO_LARGE[status])


def bad_request() -> GatewayError:
    """400 APIGW.0201 for a request the gateway cannot parse [INF: the APIG table's "Bad request" row]."""
    return GatewayError(400, "APIGW.0201", "Bad request")


def unauthorized(detail: str, *, absent: bool = False) -> GatewayError:
    """401 APIGW.0301; `absent` marks "no credential of this kind was sent" (AnyOf prefers other errors)."""
    error = GatewayError(401, "APIGW.0301", f"Incorrect IAM authentication information: {detail}")
    error.absent = absent
    return error


def token_expired() -> GatewayError:
    return GatewayError(401, "APIGW.0307", "The token must be updated.")


def throttled(retry_after: float | None) -> GatewayError:
    headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
    return GatewayError(
        429,
        "APIGW.0308",
        "The throttling threshold has been reached: policy user over ratelimit,limit:200,time:1 second",
        headers,
    )
