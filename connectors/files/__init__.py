"""Files on disk: regime model store."""
