# This file is part of ts_makecalibrations.
#
# This program is free software: you can redistribute it and/or modify it under the terms of the GNU
# General Public License as published by the Free Software Foundation, either version 3 of the
# License, or (at your option) any later version.
#
# This program is distributed in the hope that it will be useful, but WITHOUT ANY WARRANTY; without
# even the implied warranty of MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE. See the GNU
# General Public License for more details.
#
# You should have received a copy of the GNU General Public License along with this program (the
# LICENSE file at the top of the repository). If not, see <https://www.gnu.org/licenses/>.
#
# SPDX-License-Identifier: GPL-3.0-or-later

"""Calibration products that are not images: the photon transfer curve and the defect list.

They mirror the parts of ip_isr's ``PhotonTransferCurveDataset`` and ``Defects`` that the
calibration pipelines, the verification and the script use (doc/dev/contracts.md, "Butler gateway"). Both
are plain Python
objects with lossless serialisation (`PhotonTransferCurve` to JSON, `Defects` to an astropy table);
the butler formatters in `formatters` call these methods.

May import: the standard library, numpy and astropy.
"""

from __future__ import annotations

__all__ = ["Defects", "PhotonTransferCurve"]

import dataclasses
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from astropy.table import Table

_PER_AMP_LIST_FIELDS = (
    "input_exp_id_pairs",
    "raw_exp_times",
    "raw_means",
    "raw_vars",
    "exp_id_mask",
    "noise_list",
    "covariances",
    "covariances_sqrt_weights",
    "covariances_model",
    "covariances_model_no_b",
)
_PER_AMP_SCALAR_FIELDS = ("gain", "gain_err", "gain_unadjusted", "noise", "noise_err", "turnoff")
_PER_AMP_MATRIX_FIELDS = ("a_matrix", "b_matrix", "noise_matrix", "a_matrix_no_b", "noise_matrix_no_b")


def _to_builtin(value: Any) -> Any:
    """Convert numpy scalars/arrays (possibly nested) to JSON-friendly builtins."""
    if isinstance(value, dict):
        return {str(k): _to_builtin(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_builtin(v) for v in value]
    if isinstance(value, np.ndarray):
        return _to_builtin(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


@dataclasses.dataclass
class PhotonTransferCurve:
    """Photon transfer curve of one detector: a one-pair partial (``cpPtcExtract``) or the solved PTC.

    Attributes
    ----------
    detector : `int`
        Detector id.
    detector_name : `str`
        Detector full name (``R22_Sxy``).
    fit_type : `str`
        ``PARTIAL`` for a per-pair partial (``cpPtcPartial``), ``EXPAPPROXIMATION``, ``FULLCOVARIANCE``
        or ``FULLCOVARIANCE_NO_B`` for the solved ``ptc``.
    amp_names : `list` [`str`]
        Amplifiers described.
    input_exp_id_pairs : `dict` [`str`, `list` [`list` [`int`]]]
        Per amp, the exposure id pairs ``[id1, id2]`` behind each point.
    raw_exp_times : `dict` [`str`, `list` [`float`]]
        Per amp, the exposure time of each pair (s).
    raw_means : `dict` [`str`, `list` [`float`]]
        Per amp, the mean signal of each pair (ADU).
    raw_vars : `dict` [`str`, `list` [`float`]]
        Per amp, the variance of each pair (ADU^2).
    exp_id_mask : `dict` [`str`, `list` [`bool`]]
        Per amp, whether each point is used.
    gain : `dict` [`str`, `float`]
        Per amp gain (e-/ADU).
    gain_err : `dict` [`str`, `float`]
        Per amp gain uncertainty (e-/ADU).
    gain_unadjusted : `dict` [`str`, `float`]
        Per amp gain of the PTC fit before ``cpPtcAdjustGainRatios`` rescaled it with the flats'
        amp-to-amp ratios (cp_pipe ``gainUnadjusted``; equal to ``gain`` when no adjustment was made).
    noise : `dict` [`str`, `float`]
        Per amp read noise: the overscan noise in ADU for ``PARTIAL`` (as cp_pipe), e- for the solved PTC.
    noise_err : `dict` [`str`, `float`]
        Per amp 1σ uncertainty of the solved PTC's noise (e-).
    noise_list : `dict` [`str`, `list` [`float`]]
        Per amp, the overscan noise (ADU) of each pair.
    fit_pars : `dict` [`str`, `list` [`float`]]
        Per amp ``[a00, gain, n00]`` of the EXPAPPROXIMATION fit (empty for partials).
    turnoff : `dict` [`str`, `float`]
        Per amp PTC turnoff (ADU).
    covariances : `dict` [`str`, `list`]
        Per amp, for each pair, the ``L x L`` covariances ``[dx][dy]`` of the pair (ADU², lag 0 is
        the variance; empty when not measured).
    covariances_sqrt_weights : `dict` [`str`, `list`]
        Per amp, for each pair, ``L x L`` inverse 1σ errors of the covariances.
    covariances_model : `dict` [`str`, `list`]
        Per amp, for each pair, the fitted model covariances (full-covariance fits only).
    covariances_model_no_b : `dict` [`str`, `list`]
        The same for the ``b = 0`` fit that ``FULLCOVARIANCE`` also makes (cp_pipe ``covariancesModelNoB``).
    a_matrix, b_matrix : `dict` [`str`, `list` [`list` [`float`]]]
        Per amp, Astier+19 ``a`` (1/e-) and ``b`` matrices of a full-covariance fit (empty otherwise).
    noise_matrix : `dict` [`str`, `list` [`list` [`float`]]]
        Per amp, the noise covariances (e²) of a full-covariance fit.
    a_matrix_no_b, noise_matrix_no_b : `dict` [`str`, `list` [`list` [`float`]]]
        Per amp, ``a`` and noise of the ``b = 0`` fit of a ``FULLCOVARIANCE`` PTC (cp_pipe
        ``aMatrixNoB``, ``noiseMatrixNoB``): the better-determined a00 when the amps have few pixels,
        as ``b`` trades with a00.
    bad_amps : `list` [`str`]
        Amplifiers for which the measurement failed.
    metadata : `dict` [`str`, `typing.Any`]
        Free-form header (``DETECTOR``, ``DET_SER``, ``FILTER``, ``OBSTYPE``...).
    """

    detector: int
    detector_name: str
    fit_type: str
    amp_names: list[str]
    input_exp_id_pairs: dict[str, list[list[int]]] = dataclasses.field(default_factory=dict)
    raw_exp_times: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    raw_means: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    raw_vars: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    exp_id_mask: dict[str, list[bool]] = dataclasses.field(default_factory=dict)
    gain: dict[str, float] = dataclasses.field(default_factory=dict)
    gain_err: dict[str, float] = dataclasses.field(default_factory=dict)
    gain_unadjusted: dict[str, float] = dataclasses.field(default_factory=dict)
    noise: dict[str, float] = dataclasses.field(default_factory=dict)
    noise_err: dict[str, float] = dataclasses.field(default_factory=dict)
    noise_list: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    fit_pars: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    turnoff: dict[str, float] = dataclasses.field(default_factory=dict)
    covariances: dict[str, list[Any]] = dataclasses.field(default_factory=dict)
    covariances_sqrt_weights: dict[str, list[Any]] = dataclasses.field(default_factory=dict)
    covariances_model: dict[str, list[Any]] = dataclasses.field(default_factory=dict)
    covariances_model_no_b: dict[str, list[Any]] = dataclasses.field(default_factory=dict)
    a_matrix: dict[str, list[list[float]]] = dataclasses.field(default_factory=dict)
    b_matrix: dict[str, list[list[float]]] = dataclasses.field(default_factory=dict)
    noise_matrix: dict[str, list[list[float]]] = dataclasses.field(default_factory=dict)
    a_matrix_no_b: dict[str, list[list[float]]] = dataclasses.field(default_factory=dict)
    noise_matrix_no_b: dict[str, list[list[float]]] = dataclasses.field(default_factory=dict)
    bad_amps: list[str] = dataclasses.field(default_factory=list)
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in _PER_AMP_LIST_FIELDS:
            per_amp = getattr(self, name)
            for amp in self.amp_names:
                per_amp.setdefault(amp, [])
        for name in _PER_AMP_SCALAR_FIELDS:
            per_amp = getattr(self, name)
            for amp in self.amp_names:
                per_amp.setdefault(amp, math.nan)
        for amp in self.amp_names:
            self.fit_pars.setdefault(amp, [])
            for name in _PER_AMP_MATRIX_FIELDS:
                getattr(self, name).setdefault(amp, [])

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict of every field."""
        return _to_builtin(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PhotonTransferCurve:
        """Build from `to_dict` output (unknown keys are refused)."""
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"Unknown PhotonTransferCurve fields: {sorted(unknown)}.")
        kwargs = dict(data)
        kwargs["input_exp_id_pairs"] = {
            amp: [[int(i) for i in pair] for pair in pairs]
            for amp, pairs in data.get("input_exp_id_pairs", {}).items()
        }
        return cls(**kwargs)

    def to_json(self) -> str:
        """Serialise to JSON (NaN is written as the JSON extension ``NaN``)."""
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str | bytes) -> PhotonTransferCurve:
        """Deserialise from `to_json` output."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_partials(
        cls, partials: Iterable[PhotonTransferCurve], fit_type: str = "EXPAPPROXIMATION"
    ) -> PhotonTransferCurve:
        """Concatenate the per-pair points of several partials of one detector (no fit is done).

        Gains, noise, fit parameters and turnoff are left NaN/empty for the solver to fill.
        """
        partials = list(partials)
        if not partials:
            raise ValueError("At least one partial PTC is needed.")
        first = partials[0]
        if any(p.detector != first.detector for p in partials):
            raise ValueError("All partials must belong to the same detector.")
        result = cls(
            detector=first.detector,
            detector_name=first.detector_name,
            fit_type=fit_type,
            amp_names=list(first.amp_names),
            metadata=dict(first.metadata),
        )
        for partial in partials:
            for amp in result.amp_names:
                for name in _PER_AMP_LIST_FIELDS:
                    getattr(result, name)[amp].extend(getattr(partial, name).get(amp, []))
        return result


@dataclasses.dataclass
class Defects:
    """Defect list of one detector: boxes in assembled detector pixels.

    Attributes
    ----------
    detector : `int`
        Detector id.
    boxes : `list` [`tuple` [`int`, `int`, `int`, `int`]]
        ``(x0, y0, width, height)``: lower-left pixel (0-based, x = column, y = row) and size.
    metadata : `dict` [`str`, `typing.Any`]
        Free-form header (``OBSTYPE``, ``DETECTOR``, ``CALIB_ID``, counters...).
    """

    detector: int
    boxes: list[tuple[int, int, int, int]] = dataclasses.field(default_factory=list)
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        boxes = []
        for box in self.boxes:
            x0, y0, width, height = (int(v) for v in box)
            if width <= 0 or height <= 0:
                raise ValueError(f"Defect box {box} must have a positive width and height.")
            boxes.append((x0, y0, width, height))
        self.boxes = boxes

    def __len__(self) -> int:
        return len(self.boxes)

    def to_table(self) -> Table:
        """Return an astropy Table with integer columns ``x0, y0, width, height`` and the metadata."""
        columns = np.array(self.boxes, dtype=np.int64).reshape(-1, 4)
        table = Table(
            [columns[:, 0], columns[:, 1], columns[:, 2], columns[:, 3]],
            names=("x0", "y0", "width", "height"),
            dtype=(np.int64, np.int64, np.int64, np.int64),
        )
        table.meta.update(_to_builtin(self.metadata))
        table.meta["DETECTOR"] = int(self.detector)
        return table

    @classmethod
    def from_table(cls, table: Table) -> Defects:
        """Build from a `to_table` table (``DETECTOR`` must be in its metadata)."""
        meta = dict(table.meta)
        detector = int(meta["DETECTOR"])
        boxes = [(int(row["x0"]), int(row["y0"]), int(row["width"]), int(row["height"])) for row in table]
        return cls(detector=detector, boxes=boxes, metadata=meta)

    def to_mask(self, shape: Sequence[int]) -> np.ndarray:
        """Rasterise the boxes into a boolean array of ``shape`` ``(rows, cols)``; boxes are clipped."""
        mask = np.zeros(tuple(shape), dtype=bool)
        for x0, y0, width, height in self.boxes:
            mask[max(y0, 0) : max(y0 + height, 0), max(x0, 0) : max(x0 + width, 0)] = True
        return mask

    @classmethod
    def from_mask(cls, mask: np.ndarray, detector: int, metadata: dict[str, Any] | None = None) -> Defects:
        """Build an exact, non-overlapping box list covering the True pixels of ``mask``.

        Each row is split into runs of True pixels; a run extends the box above it when that box
        covers exactly the same columns and ends on the previous row.
        """
        mask = np.asarray(mask, dtype=bool)
        boxes: list[list[int]] = []
        open_boxes: dict[tuple[int, int], int] = {}  # (x0, x1) -> index of box ending on previous row
        for y in range(mask.shape[0]):
            row = mask[y]
            padded = np.concatenate(([False], row, [False]))
            edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
            still_open: dict[tuple[int, int], int] = {}
            for x0, x1 in zip(edges[::2], edges[1::2], strict=True):
                key = (int(x0), int(x1))
                if key in open_boxes:
                    index = open_boxes[key]
                    boxes[index][3] += 1
                else:
                    index = len(boxes)
                    boxes.append([int(x0), y, int(x1 - x0), 1])
                still_open[key] = index
            open_boxes = still_open
        return cls(
            detector=detector,
            boxes=[(b[0], b[1], b[2], b[3]) for b in boxes],
            metadata=dict(metadata or {}),
        )
