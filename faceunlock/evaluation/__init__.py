"""Measurement: accuracy on LFW and identity folders, error-rate metrics, presentation-attack rates, speed."""
