"""The single place that decides the SAL backend.

Uses the real ``lsst.ts.salobj`` (>= 7) when importable, otherwise the embedded `runtime`.
May import: `runtime`, `control`, ``lsst.ts.salobj``, ``lsst.ts.observatory.control``.
"""
