"""faceunlock: face verification for unlocking a Linux desktop session."""

__version__ = "0.1.0"
