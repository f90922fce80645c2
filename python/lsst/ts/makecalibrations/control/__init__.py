"""Camera and OCPS clients compatible with ts_observatory_control (``RemoteGroup``, ``ComCam``).

Used only when the real ``lsst.ts.observatory.control`` is not importable.
May import: `sal` (for ``salobj``), the standard library, astropy.
"""
