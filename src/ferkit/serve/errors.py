"""The one error the HTTP routes raise for bad input."""


class RequestError(Exception):
    """An HTTP status and a one-line `detail`; the server answers `{"detail": ...}` with
    that status (413 over a limit, 415 not an image or video, 422 unreadable, 404, 429)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail
