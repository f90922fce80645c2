"""Tests of the `butler` room."""
