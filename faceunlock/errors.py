"""The failures reported to the user as one clear line: one base class, and the text they show.

This module is the ground floor: it imports nothing from faceunlock, so any
layer (the CLI, the daemon, the PAM client) can name and describe errors
without loading the camera, the models or torch.
"""


class FaceUnlockError(Exception):
    """A failure whose message names the problem; shown without a traceback."""


class UserError(FaceUnlockError):
    """A wrong use of a command: a missing file, a refused action, a bad option."""


class ConfigError(FaceUnlockError, ValueError):
    """A configuration value is missing, unknown, mistyped, out of range, or the file is untrusted."""


class CameraError(FaceUnlockError):
    """A frame source could not be opened or read; the message names the problem."""


class EnrollError(FaceUnlockError):
    """Enrolment could not collect enough usable frames."""


class ModelError(FaceUnlockError):
    """The model card or its weights are missing, malformed or do not match."""


class StoreError(FaceUnlockError):
    """A problem with the template store; the message names it."""


EXIT_OK = 0
"""Success: a match, or the command did what was asked."""
EXIT_NO_MATCH = 1
"""verify, unlock-now: the enrolled user was not recognised (another face, no face, a timeout, a
lockout); doctor: problems were found."""
EXIT_USAGE = 2
"""A command line that cannot be parsed (argparse)."""
EXIT_ERROR = 3
"""Something is broken and nothing was decided: a missing file, a bad config, no enrolment, a camera
that cannot be opened."""

EXPECTED = (FaceUnlockError, ValueError, OSError)
"""Exception types whose message alone says what is wrong."""


def describe(exc: BaseException | None) -> str:
    """One line naming the problem; unexpected exceptions also name their type."""
    if exc is None:
        return "unknown error"
    if isinstance(exc, EXPECTED):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
