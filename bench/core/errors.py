"""User-facing errors: the CLI prints them as one line and exits with code 2."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class UsageError(ValueError):
    """Bad input from the user (a name, a value, a path). The message names the problem and the fix.

    A ValueError, so that code checking values can raise it wherever a ValueError is expected."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean X?)' for the closest choice, or '' if nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown(kind: str, name: str, choices: Iterable[str]) -> UsageError:
    """The standard error for an unknown registry name."""
    choices = sorted(choices)
    return UsageError(
        f"unknown {kind} '{name}'{did_you_mean(name, choices)}; choose one of: {', '.join(choices)}"
    )
