"""Triplet-loss training: losses, training data (chips, augmentation, the PxK sampler), the loop."""
