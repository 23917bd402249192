"""The failures that are reported to the user as one clear line."""

from faceunlock.camera import CameraError
from faceunlock.cli import UserError
from faceunlock.config import ConfigError
from faceunlock.enroll import EnrollError
from faceunlock.model import ModelError
from faceunlock.store import StoreError

EXPECTED = (CameraError, ConfigError, EnrollError, ModelError, StoreError, UserError, ValueError, OSError)
