"""Worker outcomes, as kopf names them: temporary errors are retried with backoff, permanent ones
are reported on the object at once (phase Failed) and never retried."""


class WorkerError(Exception):
    def __init__(self, reason, message):
        super().__init__(message)
        self.reason, self.message = reason, message


class TemporaryError(WorkerError):
    pass


class PermanentError(WorkerError):
    pass
