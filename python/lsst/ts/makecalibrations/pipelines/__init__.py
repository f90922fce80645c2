"""Calibration PipelineTasks written with numpy (ISR, combine, defects, PTC, verification) and the
pipeline YAML files named like cp_pipe and cp_verify.

May import: numpy, scipy, astropy, lsst.pipe.base, lsst.daf.butler, `butler`, `calib` (pure rules).
Never `sal`, `sim`, `scripts`.
"""
