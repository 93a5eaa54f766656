"""The domain's one exception hierarchy; the web layer turns each into a clear HTTP error."""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses. ``status`` is the HTTP status the web layer answers with."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """Also what another account's objects look like: their existence is never revealed."""

    status = 404


class Invalid(DomainError):
    status = 422


class Forbidden(DomainError):
    status = 403


class Conflict(DomainError):
    status = 409
