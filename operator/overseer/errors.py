"""Overseer's error hierarchy: every error carries its reporting policy.

Every error class of the package is defined here (a unit test walks the modules),
so that one handler in the operator and one in the API map them by class alone.

Adapters (``git``, ``kube``, ...) wrap their library's exceptions in these classes,
so callers decide what to do from the class alone, never from a library type:

- ``Policy.STALLED``: the user must act (bad credentials, a bad definition, a ref
  that does not exist). Retrying changes nothing until the input changes, so the
  resource reports the error in its conditions and waits for a new spec.
- ``Policy.WAITING``: something outside is not ready (a server unreachable, a
  timeout). Retry later with backoff.

Messages say what happened and what to do, and never hold a secret: adapters pass
every text that may quote a secret through :func:`scrub` first.
"""

# long because every error class of the package is defined here, on purpose (see above;
# tests/unit/test_error_hierarchy.py keeps it so): a few lines per class, no flow to split.

from __future__ import annotations

import base64
import dataclasses
import enum
import re
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import ClassVar

REDACTED = "***"

# A secret shorter than this is not scrubbed piecewise (its lines), only whole:
# replacing every short line of a PEM key ("-----END...") would mangle messages.
_MIN_FRAGMENT = 8
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/@:\s]*):[^/@\s]*@")


class Policy(enum.Enum):
    """How an error is reported and retried."""

    STALLED = "stalled"
    WAITING = "waiting"


class OverseerError(Exception):
    """Base of every error Overseer raises on purpose.

    ``policy`` tells whether the user must act (stalled) or a retry may help
    (waiting); ``reason`` is a CamelCase word for a condition's ``reason`` field.
    """

    policy: ClassVar[Policy] = Policy.WAITING
    reason: ClassVar[str] = "Error"

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.reason

    @property
    def stalled(self) -> bool:
        return self.policy is Policy.STALLED


class InvalidDefinitionError(OverseerError):
    """Input written by the user cannot be used as it is."""

    policy = Policy.STALLED
    reason = "InvalidDefinition"


class BundleTooLargeError(OverseerError):
    """The repository's ``bin/`` folder does not fit in one ConfigMap."""

    policy = Policy.STALLED
    reason = "BundleTooLarge"


class DefinitionNotRunnableError(InvalidDefinitionError):
    """The definition is valid as a file but cannot become a pod; ``field`` says where."""

    reason = "DefinitionNotRunnable"

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        self.field = self.problems[0][0]
        super().__init__("; ".join(f"{field}: {message}" for field, message in self.problems))


class CmdspecError(InvalidDefinitionError, ValueError):
    """A job's cmdspec text does not follow the grammar."""

    reason = "InvalidCmdspec"


class LoadError(InvalidDefinitionError):
    """A job file cannot be read as data; line and column are 1-based when known."""

    reason = "InvalidDocument"

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else ""
        if where and self.column:
            where += f", column {self.column}"
        return f"{where}: {self.message}" if where else self.message


class SchemaError(OverseerError, ValueError):
    """A model uses a construct a Kubernetes structural schema cannot express."""

    policy = Policy.STALLED
    reason = "UnsupportedSchema"


@dataclasses.dataclass(frozen=True)
class Problem:
    """What is wrong with one parameter of an execution."""

    parameter: str
    message: str


class ParameterError(OverseerError, ValueError):
    """The parameters supplied to an execution are not acceptable; lists every problem."""

    policy = Policy.STALLED
    reason = "InvalidParameters"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{p.parameter}: {p.message}" for p in self.problems))


class SignalError(OverseerError, ValueError):
    """Not a signal Overseer sends; the message says what is accepted."""

    policy = Policy.STALLED
    reason = "InvalidSignal"


class InvalidSpecError(OverseerError):
    """A resource's spec cannot be used as it is."""

    policy = Policy.STALLED
    reason = "InvalidSpec"


class BinNotKeptError(OverseerError):
    """An execution's commit has no ``bin/`` bundle any more: create it again."""

    policy = Policy.STALLED
    reason = "BinNotKept"


class SecretParametersError(OverseerError):
    """An execution's secret parameters cannot be read: the Secret its
    ``spec.secretParameters`` names is missing, not its own, or lacks a value."""

    policy = Policy.STALLED
    reason = "SecretParametersUnavailable"


class SettingsError(OverseerError, ValueError):
    """A process's configuration (``OVERSEER_*`` variables) is not valid: fix and restart."""

    policy = Policy.STALLED
    reason = "InvalidSettings"


class KubeError(OverseerError):
    """The API server refused or failed a call; temporary unless the status says otherwise."""

    policy = Policy.WAITING
    reason = "KubernetesAPIError"

    def __init__(
        self, message: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        """The server's ``Retry-After`` in seconds, where the call read it (429, 503)."""


class KubeInvalidObjectError(KubeError):
    """The API server rejected an object as invalid (HTTP 422): the input must change."""

    policy = Policy.STALLED
    reason = "InvalidObject"


class KubeSecretNotFoundError(KubeError):
    """A Secret named by a spec does not exist: the user must create it."""

    policy = Policy.STALLED
    reason = "SecretNotFound"


class SecretParametersPendingError(KubeError):
    """An execution's secret parameters Secret is not there yet (the API creates it just
    after the execution): look again shortly."""

    reason = "SecretParametersPending"


class NotLeaderError(KubeError):
    """This operator does not hold its Lease (any more): it must not write anything.

    Raised before a write leaves the process (the fence of docs/decisions.rst); the
    reaction that tried it stops with the operator, and the leader does it instead.
    """

    policy = Policy.WAITING
    reason = "NotLeader"


class ArchiveError(OverseerError):
    """The archive could not be read or written (a full or read-only volume, say)."""

    policy = Policy.WAITING
    reason = "ArchiveError"


class GitError(OverseerError):
    """A git operation failed for a reason not recognised more precisely: retry."""

    policy = Policy.WAITING
    reason = "GitError"


class RepositoryTooLargeError(GitError):
    """The repository holds more than the operator's bounds allow: the user must act."""

    policy = Policy.STALLED
    reason = "RepositoryTooLarge"


class GitInvalidSourceError(GitError):
    """The URL, ref or path of a repository cannot be used as written."""

    policy = Policy.STALLED
    reason = "InvalidSource"


class GitSourceNotAllowedError(GitInvalidSourceError):
    """The URL reaches where no repository may: the operator's disk (``file://``) or cache."""

    policy = Policy.STALLED
    reason = "SourceNotAllowed"


class GitInvalidCredentialsError(GitError):
    """The credentials Secret is malformed or does not fit the URL's scheme."""

    policy = Policy.STALLED
    reason = "InvalidCredentials"


class GitCredentialsNotMarkedError(GitInvalidCredentialsError):
    """The Secret named by ``secretRef`` is not marked as git credentials for Overseer."""

    policy = Policy.STALLED
    reason = "CredentialsNotMarked"


class GitInsecureTransportError(GitInvalidCredentialsError):
    """A token would go over plain ``http://`` and the repository does not allow it."""

    policy = Policy.STALLED
    reason = "InsecureTransport"


class GitAuthError(GitError):
    """The server refused the credentials, or asked for some and none were given."""

    policy = Policy.STALLED
    reason = "AuthenticationFailed"


class GitHostKeyError(GitError):
    """The SSH server's host key is not in the given known_hosts (fail closed)."""

    policy = Policy.STALLED
    reason = "HostKeyVerificationFailed"


class GitCertificateError(GitError):
    """The HTTPS server's certificate could not be verified (fail closed)."""

    policy = Policy.STALLED
    reason = "CertificateVerificationFailed"


class GitRepositoryNotFoundError(GitError):
    """The server answered but has no repository at this URL."""

    policy = Policy.STALLED
    reason = "RepositoryNotFound"


class GitRefNotFoundError(GitError):
    """The branch, tag or commit does not exist in the repository."""

    policy = Policy.STALLED
    reason = "RefNotFound"


class GitPathNotFoundError(GitError):
    """The path inside the repository is missing or not a folder at this commit."""

    policy = Policy.STALLED
    reason = "PathNotFound"


class GitUnreachableError(GitError):
    """The server could not be reached (DNS, refused connection, network down)."""

    policy = Policy.WAITING
    reason = "Unreachable"


class GitTimeoutError(GitUnreachableError):
    """A git network operation took longer than its timeout."""

    reason = "Timeout"


class WebhookError(OverseerError):
    """A delivery failed for a reason a later attempt may not share: retry."""

    policy = Policy.WAITING
    reason = "WebhookError"


class WebhookUrlRefusedError(WebhookError):
    """The URL is not http(s), holds credentials, or points at a private address."""

    policy = Policy.STALLED
    reason = "UrlRefused"


class WebhookSecretError(WebhookError):
    """The signing secret is malformed (a ``whsec_`` prefix with invalid base64)."""

    policy = Policy.STALLED
    reason = "InvalidSecret"


class WebhookNotSignedError(WebhookError):
    """No signing secret serves the execution's namespace: nothing is sent unsigned, the
    delivery is tried again (with backoff) until one does."""

    reason = "NotSigned"


class WebhookRejectedError(WebhookError):
    """The receiver answered with a 4xx (other than 408 and 429) or a redirect."""

    policy = Policy.STALLED
    reason = "Rejected"


class WebhookGoneError(WebhookRejectedError):
    """The receiver answered 410 Gone: nothing more is sent to that URL for the execution."""

    reason = "Gone"


class WebhookServerError(WebhookError):
    """The receiver answered 5xx, 408 or 429: retry later."""

    reason = "ServerError"


class WebhookUnreachableError(WebhookError):
    """The receiver could not be reached (DNS, refused connection, TLS, reset)."""

    reason = "Unreachable"


class WebhookTimeoutError(WebhookUnreachableError):
    """The receiver did not answer within the timeout."""

    reason = "Timeout"


def secret_variants(secret: str) -> set[str]:
    """Every form in which a secret may be quoted: whole, URL-encoded, its lines."""
    variants = {secret, secret.strip(), urllib.parse.quote(secret, safe="")}
    variants.update(line.strip() for line in secret.splitlines())
    return {v for v in variants if len(v) >= _MIN_FRAGMENT or v == secret.strip()}


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """Return ``text`` with every secret (and URL password) replaced by ``***``.

    The base64 of a Basic ``user:secret`` pair cannot be derived from the secret
    alone: callers that may have sent one pass :func:`basic_auth_value` too.
    Empty and ``None`` secrets are ignored.
    """
    variants: set[str] = set()
    for secret in secrets:
        if secret and secret.strip():
            variants |= secret_variants(secret)
    # Longest first, so a whole key is replaced before any of its lines.
    for variant in sorted(variants, key=len, reverse=True):
        text = text.replace(variant, REDACTED)
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}:{REDACTED}@", text)


def basic_auth_value(username: str, password: str) -> str:
    """The base64 part of an HTTP Basic header, to scrub alongside the password."""
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


# --- what the API answers (mapped to HTTP statuses once, in overseer_api.errors) ---


class NotFoundError(OverseerError):
    """What a request names does not exist (a job, an execution, a namespace)."""

    policy = Policy.STALLED
    reason = "NotFound"


class JobNotFoundError(NotFoundError):
    """No job has this display name in this namespace."""

    reason = "JobNotFound"


class ExecutionNotFoundError(NotFoundError):
    """The job has no execution with this id."""

    reason = "ExecutionNotFound"


class DeliveryNotFoundError(NotFoundError):
    """The execution has no webhook delivery with this id."""

    reason = "DeliveryNotFound"


class RepositoryUnknownError(NotFoundError):
    """No OverseerRepository has this name in this namespace (not a git error: the
    git server's missing repository is :class:`GitRepositoryNotFoundError`)."""

    reason = "RepositoryUnknown"


class NamespaceNotServedError(NotFoundError):
    """The API does not serve this namespace (the operator does not watch it)."""

    reason = "NamespaceNotServed"


class ConflictError(OverseerError):
    """The request is valid but the resource's state refuses it now."""

    policy = Policy.STALLED
    reason = "Conflict"


class AuthenticationError(OverseerError):
    """No credentials, or credentials that name nobody."""

    policy = Policy.STALLED
    reason = "Unauthenticated"


class PermissionDeniedError(OverseerError):
    """The caller is known but may not do this; ``scope`` is what it lacks."""

    policy = Policy.STALLED
    reason = "Forbidden"

    def __init__(self, message: str, scope: str) -> None:
        super().__init__(message)
        self.scope = scope


class NotReadyError(OverseerError):
    """The process is starting: its caches do not hold a first full list yet."""

    policy = Policy.WAITING
    reason = "NotReady"


class InvalidRequestError(OverseerError):
    """The request cannot be read as it is (a malformed cursor or query)."""

    policy = Policy.STALLED
    reason = "InvalidRequest"


class IdempotencyKeyError(InvalidRequestError):
    """The Idempotency-Key header is empty, too long, or not printable ASCII."""

    reason = "InvalidIdempotencyKey"


class IdempotencyKeyReusedError(OverseerError):
    """The key was used before, by this caller, for a request with another body or path."""

    policy = Policy.STALLED
    reason = "IdempotencyKeyReused"


class IdempotencyKeyBusyError(ConflictError):
    """A request with the same key is still being processed: retry in a moment."""

    reason = "IdempotencyKeyInProgress"


class HookSignatureError(AuthenticationError):
    """A push hook's signature or token is missing or does not match the repository's secret."""

    reason = "InvalidSignature"


class PayloadTooLargeError(InvalidRequestError):
    """The request's body is larger than the route accepts."""

    reason = "PayloadTooLarge"


class JobInactiveError(ConflictError):
    """The job is deactivated: it executes again once reactivated (PUT /jobs/{name})."""

    reason = "JobInactive"


class ConcurrencyLimitError(ConflictError):
    """The job's concurrency policy (forbid) refuses one more execution now."""

    reason = "ConcurrencyLimit"


class ExecutionFinishedError(ConflictError):
    """The execution has ended: it cannot be signalled any more."""

    reason = "ExecutionFinished"
