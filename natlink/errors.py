"""Errors a user can act on: one line naming the problem, a hint naming the fix, an exit code."""

from __future__ import annotations

EXIT_OK = 0
EXIT_RUNTIME = 1  # a runtime problem or a failed check (router refused, unreachable, provider error)
EXIT_USAGE = 2  # usage or configuration error


class NatlinkError(Exception):
    """An error shown to the user as one line, without a traceback."""

    exit_code = EXIT_RUNTIME

    def __init__(self, message: str, hint: str = "", *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class ConfigError(NatlinkError):
    """The configuration is invalid; the message names file, line and key. ``problems`` holds every problem
    found in one read (unknown keys first); the message is the only one, or how many there are."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str = "", *, exit_code: int | None = None,
                 problems: tuple[str, ...] = ()) -> None:
        super().__init__(message, hint, exit_code=exit_code)
        self.problems = problems or (message,)


class UsageError(NatlinkError):
    exit_code = EXIT_USAGE
