"""Scored liveness (presentation-attack detection) for ordinary RGB webcams.

crops (context crops) -> runtime (the MiniFASNet networks on ONNX Runtime) and cues (motion, still
frames, glare, texture) per frame -> score (window features, logistic fusion, verdict) per tracked
face. card reads models/minifasnet.json. network and export need torch (training and export only);
nothing on the run-time path imports it.
"""
