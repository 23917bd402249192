"""Triplet-loss training and evaluation: LFW protocol, metrics, face sets."""
