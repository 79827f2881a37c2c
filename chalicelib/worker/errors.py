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


class AlreadyExists(TemporaryError):
    """A create lost to an object of the same name (a concurrent delivery, or our own create whose
    answer was lost): the caller reads the object and carries on; alone it is a temporary error."""
