"""The applications on top of vision: `predict` (photos and folders), `video`, and `serve`
(REST API and web page). No torch."""
