"""Detection, alignment and embedding of faces."""
