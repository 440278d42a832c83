"""Errors of the fine-tuning package. Each carries the HTTP status the gateway answers with, so
the REST layer maps them in one place (`except FinetuneError as e: status = e.http_status`).

    FinetuneError                400
    ├── InvalidFile              400  a training file failed validation (names the lines)
    ├── InvalidJob               400  a job request the service cannot run (param names the field)
    ├── Forbidden                403  a field reserved to admin keys
    ├── NotFound                 404
    │   ├── FileNotFound
    │   ├── JobNotFound
    │   └── CompletionNotFound
    ├── Conflict                 409  e.g. cancelling a finished job
    ├── StoreUnavailable         503  the database stayed busy or unreachable
    └── TrainingFailed           500  raised inside a worker; becomes the job's `error`
"""

from __future__ import annotations

from dataclasses import dataclass


class FinetuneError(Exception):
    http_status: int = 400
    code: str = "invalid_request"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


@dataclass(frozen=True)
class LineError:
    line: int  # 1-based, as an editor shows it
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class InvalidFile(FinetuneError):
    code = "invalid_file"
    # Enough to fix a file in a few rounds without drowning the caller.
    SHOWN = 10

    def __init__(self, filename: str, errors: list[LineError] | None = None, *, reason: str | None = None) -> None:
        self.errors = tuple(errors or ())
        self.filename = filename
        if reason is not None:
            detail = reason
        else:
            shown = "; ".join(str(e) for e in self.errors[: self.SHOWN])
            more = len(self.errors) - self.SHOWN
            detail = shown + (f" (and {more} more)" if more > 0 else "")
        super().__init__(f"Invalid training file '{filename}': {detail}", param="file")


class InvalidJob(FinetuneError):
    code = "invalid_job"


class Forbidden(FinetuneError):
    http_status = 403
    code = "permission_denied"


class NotFound(FinetuneError):
    http_status = 404
    code = "not_found"


class FileNotFound(NotFound):
    def __init__(self, file_id: str, param: str = "file_id") -> None:
        super().__init__(f"No such File object: {file_id}", param=param)


class JobNotFound(NotFound):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"No fine-tuning job found with id '{job_id}'.", param="fine_tuning_job_id")


class CompletionNotFound(NotFound):
    pass


class Conflict(FinetuneError):
    http_status = 409
    code = "conflict"


class StoreUnavailable(FinetuneError):
    http_status = 503
    code = "service_unavailable"


class TrainingFailed(FinetuneError):
    """A job could not finish. `code` and `message` become the job's `error` object."""

    http_status = 500
    code = "training_failed"
