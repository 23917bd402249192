"""faceunlock: face verification for unlocking a Linux desktop session."""

import os

__version__ = "0.1.0"

# ONNX Runtime's Linux builds (1.29 and later) send usage telemetry to Microsoft by default and keep
# a device id and an event database under ~/.cache/Microsoft. A face-unlock tool sends nothing
# anywhere: it is switched off here, before any faceunlock module can import onnxruntime.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"
