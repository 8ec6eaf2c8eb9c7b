"""Domain errors: each message says what went wrong and what to do about it."""

from __future__ import annotations


class AmplifyError(Exception):
    """Base for errors a person should read; ``str(exc)`` is the message to show."""


class ConfigError(AmplifyError):
    """The workspace is configured in a way that cannot work (bad key, bad URL)."""


class NotAllowed(AmplifyError):
    """The acting user's role does not permit this action."""


class IllegalTransition(AmplifyError):
    """The post is not in a state where this action makes sense."""


class ValidationFailed(AmplifyError):
    """Input is incomplete or invalid; ``problems`` lists each thing to fix."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class NotFound(AmplifyError):
    """The thing asked for does not exist (or is not visible to this user)."""


class Conflict(AmplifyError):
    """Someone else changed this record first; reload and try again."""
