"""The system service: the D-Bus daemon, the logind watcher, the PAM client and the installer.

All D-Bus code lives in this package. ``names`` and ``pam_client`` import
neither torch nor numpy, so the PAM client starts fast.
"""
