"""The desktop parts: the preview window of `faceunlock test` and the faceunlock-settings app (GTK 4)."""
