"""Tests of the `calib` room."""
