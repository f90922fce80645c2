"""Simulated observatory of each camera (`cameras`): camera, header service, OODS and OCPS CSCs
(CCCamera/MTCamera/ATCamera ...), the state-only MTDome/MTDomeTrajectory, the ATSpectrograph, the
raw-image truth model, fault injection and the OCPS pipeline executor.

May import: `sal`, `calib`, `butler`, `pipelines`. Never `scripts` or `cli`.
"""
