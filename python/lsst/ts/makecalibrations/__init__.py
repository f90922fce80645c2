"""Make LSSTComCam combined calibrations with a SAL Script.

The package is split into rooms (subpackages); each says in its docstring what it may import:

* `runtime`   -- embedded, in-process salobj-compatible SAL runtime.
* `sal`       -- the single place that picks the SAL backend (real or embedded).
* `control`   -- camera and OCPS clients compatible with ts_observatory_control.
* `calib`     -- pure logic: configuration, plan, OCPS job specifications, verification rules.
* `scripts`   -- the SAL Scripts (orchestration).
* `butler`    -- the data butler gateway: repository, instrument, certification.
* `pipelines` -- numpy calibration PipelineTasks and cp_pipe/cp_verify-named pipelines.
* `sim`       -- simulated CSCs, raw-image truth model, fault injection.
* `cli`       -- ``run_script`` and its progress display.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
