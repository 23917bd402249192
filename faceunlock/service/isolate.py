"""Keep the caller's environment out of the processes that run as root.

The PAM client runs with whatever environment the PAM stack hands it, and
GLib reads its own variables (``GI_TYPELIB_PATH``, ``GIO_MODULE_DIR``,
``GIO_EXTRA_MODULES``, ``G_DEBUG``...) when gi is imported: a typelib or a GIO
module from a user's folder would run inside root. Python's own variables
are ignored because the entry points run the interpreter with ``-I``
(``python -I -m faceunlock...``); this module drops GLib's before gi loads.
"""

from __future__ import annotations

import os
import sys

GLIB_PREFIXES = ("GI_", "GIO_", "G_", "GOBJECT_", "GSETTINGS_", "GVFS_")
ALSO = ("XDG_DATA_DIRS", "XDG_DATA_HOME", "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT")


def scrub_environment() -> list[str]:
    """Remove GLib's and the loader's variables from os.environ; returns the names removed.

    Must run before anything imports gi; raises RuntimeError if gi is already loaded.
    """
    if "gi" in sys.modules:
        raise RuntimeError("gi was imported before the environment was scrubbed")
    removed = sorted(k for k in os.environ if k.startswith(GLIB_PREFIXES) or k in ALSO)
    for key in removed:
        del os.environ[key]
    return removed


def isolated() -> bool:
    """Whether this interpreter ignores PYTHON* variables and the user's site folder (-I or -E -s)."""
    return bool(sys.flags.isolated or (sys.flags.ignore_environment and sys.flags.no_user_site))
