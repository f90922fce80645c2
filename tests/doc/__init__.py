"""Tests of the `doc` room."""
