"""Tests of the Ray delivery: rows equal to the local engine, URIs, a cluster of two nodes."""
