"""SAL Scripts: ``BaseMakeCalibrations`` (orchestration) and ``MakeComCamCalibrations``.

May import: `sal`, `control` (through `sal`), `calib`, `butler`.
"""
