"""One exception family for everything a user can cause.

The shells translate these: the CLI to exit code 2 and a one-line reason, HTTP to a 4xx, the
dashboard to ``st.error``. Anything that is not an ``OpscoreError`` is a bug and surfaces as such.
"""


class OpscoreError(Exception):
    """Base of every error a person can act on; the message says what to do."""

    http_status = 400


class BadInputError(OpscoreError):
    """Input data or arguments are malformed (names the column, row or field)."""

    http_status = 422


class NotFoundError(OpscoreError):
    """A version, alias or record that was asked for does not exist."""

    http_status = 404


class ConflictError(OpscoreError):
    """The request clashes with current state (existing version id, alias already there)."""

    http_status = 409


class IntegrityError(OpscoreError):
    """An artifact does not match its recorded checksum, or the store is inconsistent."""

    http_status = 409


class PreflightError(OpscoreError):
    """A version failed the checks that guard an alias move."""

    http_status = 409


class PermissionDenied(OpscoreError):
    """The actor lacks the role the action needs."""

    http_status = 403


class StoreUnavailable(OpscoreError):
    """The database cannot be reached right now."""

    http_status = 503


class TooLargeError(BadInputError):
    """A request or upload exceeds a configured limit."""

    http_status = 413


class Unauthenticated(OpscoreError):
    """A request that changes state came without a credential, or with one nobody issued."""

    http_status = 401


class TooManyAttempts(PermissionDenied):
    """Too many wrong passwords in a row: the next attempt has to wait."""

    http_status = 429
