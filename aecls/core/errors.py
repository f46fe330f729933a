"""Errors a user can cause (bad paths, bad files, bad config values).

The CLI turns every `AeclsError` into one line on stderr and exit code 2; anything else is a bug and
may show a traceback.
"""


import re

# user:password@ in a URL (a storage URL in a message): the password shows as ***
_URL_PASSWORD = re.compile(r"(://[^:/@\s'\"]*:)[^@\s'\"]+@")


def mask_secrets(text: str) -> str:
    """`text` with the password of every URL in it replaced by ***: applied to every error the
    CLI prints, so no message path can show one."""
    return _URL_PASSWORD.sub(r"\1***@", text)


class AeclsError(Exception):
    """A problem with the user's input: a path, a file or a configuration value.

    `setting`: the library's name of the setting that fixes it (`allow_changes`, `select`, ...), or
    several; the library's message says what is wrong in its own words, and the command line, the
    one place that names flags, adds the flag of the command that ran (aecls.cli.main.flags_for:
    the option whose destination is that name; for `aecls fit|validate`, LightningCLI's key)."""

    exit_code = 2

    def __init__(self, message: str = "", *, setting: str | tuple[str, ...] | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class Interrupted(AeclsError):
    """The user stopped a command (Ctrl-C, or SIGTERM): one line saying what was left how, exit 130
    (the shell's code for SIGINT; the CLI gives 143 for SIGTERM)."""

    exit_code = 130


class FitInterrupted(BaseException):
    """Ctrl-C during a study trial's fit. Lightning turns it into SystemExit(1); this is raised
    instead, past Optuna (which would fail the trial and lose its params), so the study's launcher
    can fail and re-queue the trial as it does a killed worker's. Not an Exception on purpose."""


class DataError(AeclsError):
    """Data files are missing, truncated, corrupt or not what they claim to be."""


def check(condition: bool, message: str, setting: str | tuple[str, ...] | None = None) -> None:
    """Raise `AeclsError(message)` unless `condition` holds (for validating config values)."""
    if not condition:
        raise AeclsError(message, setting=setting)
