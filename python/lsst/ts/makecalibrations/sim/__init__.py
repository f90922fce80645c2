"""Simulated observatory: CCCamera, CCHeaderService, CCOODS and OCPS CSCs, the raw-image truth model,
fault injection and the OCPS pipeline executor.

May import: `sal`, `calib`, `butler`, `pipelines`. Never `scripts` or `cli`.
"""
