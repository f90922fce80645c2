"""Pure calibration logic: configuration schema and validation, exposure plan, OCPS job
specifications, verification and certification rules, run report model.

May import: the standard library, jsonschema, PyYAML, astropy.time. Never the bus, the butler or asyncio.
"""
