"""Shipped data files: model cards and weights, unit, bus policy, PAM profile.

Each folder here links to the top-level folder of the same name, so a checkout and an installed
wheel find them the same way (faceunlock.paths.package_data).
"""
