"""Tests of the `scripts` room."""
