"""The local commands on top of vision: `predict` (photos and folders) and `video`, and the
face record every delivery writes. No torch."""
