"""One error hierarchy for every layer; `Status` serialises it the way kube-apiserver does.

Domain code raises these; adapters wrap library exceptions into them (`raise ... from e`), and the
API turns any of them into a `Status` body with the right HTTP code. Nothing else reaches a client.
"""


class ApiError(Exception):
    code = 500
    reason = "InternalError"

    def __init__(self, message, details=None):
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def status(self):
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


class BadRequest(ApiError):
    code, reason = 400, "BadRequest"


class Unauthorized(ApiError):
    code, reason = 401, "Unauthorized"


class Forbidden(ApiError):
    code, reason = 403, "Forbidden"


class NotFound(ApiError):
    code, reason = 404, "NotFound"


class MethodNotAllowed(ApiError):
    code, reason = 405, "MethodNotAllowed"


class NotAcceptable(ApiError):
    code, reason = 406, "NotAcceptable"


class AlreadyExists(ApiError):
    code, reason = 409, "AlreadyExists"


class Conflict(ApiError):
    code, reason = 409, "Conflict"


class RequestEntityTooLarge(ApiError):
    code, reason = 413, "RequestEntityTooLarge"


class UnsupportedMediaType(ApiError):
    code, reason = 415, "UnsupportedMediaType"


class Invalid(ApiError):
    code, reason = 422, "Invalid"


class TooManyRequests(ApiError):
    code, reason = 429, "TooManyRequests"


class ServiceUnavailable(ApiError):
    """A dependency (DynamoDB, SQS) failed; retrying later may succeed."""

    code, reason = 503, "ServiceUnavailable"


def not_found(resource, name):
    return NotFound(f'{resource} "{name}" not found',
                    {"name": name, "group": resource.split(".", 1)[-1], "kind": resource.split(".")[0]})


def invalid(kind, name, resource, causes):
    """422 with one cause per bad field, message formatted like kube-apiserver's."""
    summary = ", ".join(f"{c['field']}: {c['message']}" for c in causes)
    group = resource.split(".", 1)[-1]
    return Invalid(
        f'{kind}.{group} "{name}" is invalid: {summary}',
        {"name": name, "group": group, "kind": kind, "causes": causes},
    )
