"""Domain errors. Each protocol maps them once (REST: handlers/problems.py)."""

from __future__ import annotations

from dataclasses import dataclass, field


class DomainError(Exception):
    """Base class; ``detail`` is safe to show to the caller."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    def __init__(self, resource: str, ident: object) -> None:
        super().__init__(f"The requested {resource} with ID '{ident}' was not found.")
        self.resource = resource


class Conflict(DomainError):
    """The request clashes with current state (duplicate, illegal transition)."""

    def __init__(self, detail: str, field: str | None = None, code: str = "duplicate") -> None:
        super().__init__(detail)
        self.field = field
        self.code = code


class UnpaidOrderLimit(Conflict):
    """The caller already holds as many unpaid orders as a client may (API6: nobody hoards the
    catalogue); paying or cancelling one frees a place."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"At most {limit} unpaid orders at a time; pay or cancel one before placing another.",
            code="unpaid_order_limit",
        )
        self.limit = limit


class RecentlyHeld(Conflict):
    """The caller's own unpaid hold on this pet lapsed or was cancelled by it a moment ago: it
    may not hold the pet again until the re-hold cooldown is over (API6: a hold is not renewed
    indefinitely); every other client may order the pet at once."""

    def __init__(self, seconds: int) -> None:
        super().__init__(
            "Your unpaid order for this pet lapsed or was cancelled moments ago; you can order "
            f"it again in {seconds} seconds (other clients can order it now).",
            field="petId",
            code="rehold_cooldown",
        )
        self.seconds = seconds


class Forbidden(DomainError):
    """The caller is known but may not do this."""


class PreconditionFailed(DomainError):
    """A conditional request (If-Match) no longer matches the stored version."""


class AuthenticationFailed(DomainError):
    """Credentials are wrong. Deliberately says nothing about which part."""


@dataclass
class FieldError:
    field: str
    message: str
    code: str = "invalid"


class InvalidInput(DomainError):
    """Input passed schema validation but breaks a business rule."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


class InvalidCursor(InvalidInput):
    """A pagination cursor that is not one this server issued for this query (malformed,
    forged, or made for another sort), or a cursor given together with ``page``: a 400 naming
    ``cursor``, never a 500."""

    def __init__(self, message: str) -> None:
        super().__init__([FieldError("cursor", message, "invalid_cursor")])


@dataclass
class TooManyAttempts(DomainError):
    retry_after: int
    detail: str = field(default="Too many failed attempts. Try again later.")

    def __post_init__(self) -> None:
        DomainError.__init__(self, self.detail)


class Overloaded(DomainError):
    """A bounded resource (the password-hashing queue) is full; retry after ``retry_after``
    seconds. Nothing was done."""

    def __init__(self, detail: str, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class PaymentDeclined(DomainError):
    """The payment processor refused the source (e.g. card declined, insufficient funds)."""

    def __init__(self, detail: str, code: str) -> None:
        super().__init__(detail)
        self.code = code


class PaymentProcessorError(DomainError):
    """The processor failed or was unreachable; nothing was charged and the caller may retry."""


class PayloadTooLarge(DomainError):
    """A size cap (other than the raw body limit) is exceeded; ``field`` names what is too big."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field


class UpstreamFailed(DomainError):
    """A service this server depends on answered with an error or nonsense."""


class UpstreamTimeout(DomainError):
    """A service this server depends on did not answer in time."""


class ImageRejected(DomainError):
    """An uploaded image refused for the reason ``code`` (``field`` names the form part)."""

    def __init__(self, detail: str, code: str, field: str = "file") -> None:
        super().__init__(detail)
        self.code = code
        self.field = field


class ImageMissing(ImageRejected):
    """No file part, or an empty one."""


class ImageTooLarge(ImageRejected):
    """More bytes than the upload limit."""


class UnsupportedImage(ImageRejected):
    """Not JPEG, PNG or WebP by its bytes, or a declared type that disagrees with them."""


class UnsafeImage(ImageRejected):
    """A JPEG, PNG or WebP that cannot be accepted: corrupt, truncated, a decompression bomb,
    too many frames, data after the image, or oversized metadata."""
