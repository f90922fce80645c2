"""Tests of the `pipelines` room."""
