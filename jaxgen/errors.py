"""Errors a user can cause or fix, one class per kind.

Entry points (the studies, `python -m jaxgen.*`) turn these into one line on stderr and the kind's
exit code; anything else is a bug and keeps its traceback. The message itself names the file or
flag and says what to do, so it is complete without the traceback.
"""
from __future__ import annotations


class UserError(Exception):
    """Base of the errors a user can fix. `exit_code` is the process exit status for its kind."""

    exit_code = 2


class ConfigError(UserError, ValueError):
    """An invalid flag or config value (names the flag and its allowed range)."""

    exit_code = 2


class DataError(UserError):
    """Missing, corrupt or unreadable data (names the file and the way out)."""

    exit_code = 3


class DownloadError(DataError):
    """A download failed: offline, wrong checksum, server error (names the URLs and the way out)."""

    exit_code = 4


class CheckpointError(UserError):
    """A missing, corrupt or mismatched checkpoint or exported model."""

    exit_code = 5


class WeightsError(UserError):
    """Generator weights that cannot be found, read or are not supported."""

    exit_code = 6


class OutputFolderError(UserError):
    """The output folder cannot be written or holds results that would be lost."""

    exit_code = 7


class TrainingError(UserError):
    """Training cannot go on (a NaN or infinite loss); the last good checkpoint is kept."""

    exit_code = 8


class ImageError(DataError):
    """An unreadable, degenerate or unusable input image (for example an inversion target)."""

    exit_code = 9


def first_line(error: BaseException, limit: int = 160) -> str:
    """The first line of `error`'s message (its class name when empty), cut at `limit` characters: the cause
    quoted inside a one-line message."""
    lines = str(error).strip().splitlines()
    line = lines[0] if lines else type(error).__name__
    return line if len(line) <= limit else line[:limit] + "..."
