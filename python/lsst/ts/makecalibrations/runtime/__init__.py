"""Embedded in-process SAL runtime, API-compatible with the lsst.ts.salobj subset scripts and CSCs use.

May import: the standard library, jsonschema, PyYAML, astropy.time. Nothing else in this package.
"""
