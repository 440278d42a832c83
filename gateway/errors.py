"""The gateway's error hierarchy, rendered once into OpenAI's error envelope.

    GatewayError                      500 server_error
    ├── InvalidRequest                400 invalid_request_error
    │   ├── ContentPolicyViolation    400 code=content_policy_violation
    │   └── UnsupportedParameter      400 code=unsupported_parameter
    ├── AuthenticationError           401 authentication_error
    ├── PermissionDenied              403 permission_error
    ├── NotFound                      404 not_found_error (code=model_not_found for models)
    ├── RequestTimeout                408 invalid_request_error (the body did not arrive in time)
    ├── Conflict                      409 conflict_error
    ├── RateLimited                   429 rate_limit_error (+ Retry-After)
    ├── UpstreamError                 502 upstream_error   (a provider answered badly)
    ├── ServiceUnavailable            503 service_unavailable (no healthy deployment, store down)
    └── UpstreamTimeout               504 timeout          (a provider did not answer in time)

Messages that come from upstream providers are sanitised (`sanitise`) before they reach clients:
no stack traces, no keys, no internal URLs.
"""

from __future__ import annotations

import re
from typing import Any

import orjson


class GatewayError(Exception):
    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def json(self) -> bytes:
        return orjson.dumps(self.body())


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class ContentPolicyViolation(InvalidRequest):
    code = "content_policy_violation"


class UnsupportedParameter(InvalidRequest):
    code = "unsupported_parameter"


class AuthenticationError(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    type = "permission_error"
    code = "permission_denied"


class NotFound(GatewayError):
    status = 404
    type = "not_found_error"
    code = "not_found"


class ModelNotFound(NotFound):
    type = "invalid_request_error"
    code = "model_not_found"


def model_not_found(model: str) -> ModelNotFound:
    return ModelNotFound(f"The model '{model}' does not exist or you do not have access to it.", param="model")


class RequestTimeout(GatewayError):
    status = 408
    type = "invalid_request_error"
    code = "request_timeout"


class Conflict(GatewayError):
    status = 409
    type = "conflict_error"
    code = "conflict"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamError(GatewayError):
    """A provider answered, but with an error or an unreadable body. Retryable."""

    status = 502
    type = "upstream_error"
    code = "bad_gateway"


class ServiceUnavailable(GatewayError):
    status = 503
    type = "service_unavailable"
    code = "service_unavailable"


class UpstreamTimeout(GatewayError):
    status = 504
    type = "timeout"
    code = "upstream_timeout"


class UpstreamClientError(GatewayError):
    """A provider rejected the request itself (its 4xx). Not retryable; passed on as 400."""

    status = 400
    type = "invalid_request_error"
    code = "upstream_rejected"


_SECRETS = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|Bearer\s+\S+|api[_-]?key['\"=:\s]+\S+)", re.I)
_URLS = re.compile(r"https?://\S+")
_TRACE = re.compile(r"Traceback \(most recent call last\).*", re.S)


def sanitise(message: str, limit: int = 300) -> str:
    """Strip what must never reach a client from an upstream's error text."""
    message = _TRACE.sub("", message)
    message = _SECRETS.sub("[redacted]", message)
    message = _URLS.sub("[upstream]", message)
    message = " ".join(message.split())
    return message[:limit] or "upstream error"


_BY_STATUS: dict[int, type[GatewayError]] = {
    400: InvalidRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    408: RequestTimeout,
    409: Conflict,
    429: RateLimited,
    502: UpstreamError,
    503: ServiceUnavailable,
    504: UpstreamTimeout,
}


def from_status(status: int, message: str, *, param: str | None = None, code: str | None = None) -> GatewayError:
    """Translate a domain package's error (which knows its HTTP status) into ours."""
    cls = _BY_STATUS.get(status, GatewayError)
    return cls(message, param=param, code=code)
