"""Measurement: accuracy on LFW and identity folders, error-rate metrics, presentation-attack rates
(APCER/BPCER over every scan window, MADE attack clips), time to match, speed."""
