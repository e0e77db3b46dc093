"""Tests of the HTTP delivery: the REST API, the page in a browser, stream, jobs, workers."""
