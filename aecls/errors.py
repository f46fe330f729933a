"""Errors a user can cause (bad paths, bad files, bad config values).

The CLI turns every `AeclsError` into one line on stderr and exit code 2; anything else is a bug and
may show a traceback.
"""


class AeclsError(Exception):
    """A problem with the user's input: a path, a file or a configuration value."""


class DataError(AeclsError):
    """Data files are missing, truncated, corrupt or not what they claim to be."""


def check(condition: bool, message: str) -> None:
    """Raise `AeclsError(message)` unless `condition` holds (for validating config values)."""
    if not condition:
        raise AeclsError(message)
