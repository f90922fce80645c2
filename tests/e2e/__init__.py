"""Tests of whole runs across rooms: the script, the simulated observatory, the pipelines and the report."""
