"""Tests of the `sal` room."""
