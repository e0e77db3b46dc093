"""Tests of the local commands: predict, video and the face record."""
