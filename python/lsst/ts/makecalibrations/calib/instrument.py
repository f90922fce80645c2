"""What the calibration logic needs to know about a camera: its name, detectors and OCPS index.

`BaseMakeCalibrations` is reusable for any camera; the camera-specific facts it and the pure
`calib` modules need are gathered in one frozen `InstrumentSpec`. `COMCAM` describes LSSTComCam.

May import: the standard library only.
"""

from __future__ import annotations

__all__ = ["InstrumentSpec", "COMCAM"]

import dataclasses


@dataclasses.dataclass(frozen=True)
class InstrumentSpec:
    """Camera facts used to validate a configuration, plan a run and build OCPS jobs.

    Attributes
    ----------
    name : `str`
        Butler instrument name, used in the data queries (``LSSTComCam``).
    detector_ids : `tuple` [`int`, ...]
        Every detector of the camera; an empty ``detectors`` configuration means all of them.
    pipeline_subdir : `str`
        Directory under ``${CP_PIPE_DIR}/pipelines`` and ``${CP_VERIFY_DIR}/pipelines`` that holds
        the instrument's pipelines.
    ocps_index : `int`
        SAL index of the OCPS that serves this camera.
    read_out_time : `float`
        Readout time of one image (s), used to estimate durations.
    min_exptime : `float`
        Shortest exposure time (s) of a shutter-open image (flat).
    raw_collection : `str`
        RUN collection of the raw images (the OCPS adds it to every job's inputs).
    """

    name: str
    detector_ids: tuple[int, ...]
    pipeline_subdir: str
    ocps_index: int
    read_out_time: float = 2.0
    min_exptime: float = 0.1
    raw_collection: str = ""

    @property
    def n_detectors(self) -> int:
        """Number of detectors of the camera."""
        return len(self.detector_ids)


COMCAM = InstrumentSpec(
    name="LSSTComCam",
    detector_ids=tuple(range(9)),
    pipeline_subdir="LSSTComCam",
    ocps_index=2,
    read_out_time=2.0,
    min_exptime=0.1,
    raw_collection="LSSTComCam/raw/all",
)
"""LSSTComCam: nine ITL detectors R22_S00..R22_S22 (ids 0..8), served by OCPS:2."""
