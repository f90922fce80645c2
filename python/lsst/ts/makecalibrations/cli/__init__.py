"""Command-line tools: ``run_script`` (run a SAL Script against the simulated observatory), the
``--plan`` dry run and the live progress display.

May import: everything in this package.
"""
