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

"""The core ISR PipelineTask restricted to some observation types (labels ``cpPtcIsr``,
``cpDefectsDarkIsr``, ``cpDefectsFlatIsr``).

A defects job sends darks and flats in one data query, and cp_pipe's PTC pairing only uses flats, so
these pipelines need an ISR step that ignores exposures of the wrong type. `SelectedIsrTask` is the
core `IsrTask` unchanged, plus an ``observationTypes`` config: its connections drop, while the quantum
graph is built, every quantum whose exposure record has another ``observation_type``, so the
exposure is neither processed nor passed to the downstream combine / PTC steps. All `IsrTask` config
fields (``doDefect``, ``doCrosstalk``, ...) are accepted as they are.

May import: lsst.pipe.base, lsst.pex.config, `pipelines.tasks.isr_task`.
"""

from __future__ import annotations

__all__ = ["ObservationTypesConfig", "SelectedIsrConfig", "SelectedIsrConnections", "SelectedIsrTask"]

import lsst.pex.config as pexConfig  # noqa: N812 (LSST convention)
import lsst.pipe.base as pipeBase  # noqa: N812 (LSST convention)

from .isr_task import IsrTask, IsrTaskConfig, IsrTaskConnections


class SelectedIsrConnections(IsrTaskConnections, dimensions=("instrument", "exposure", "detector")):
    """`IsrTaskConnections` that remove the quanta of unwanted observation types."""

    config: SelectedIsrConfig

    def adjust_all_quanta(self, adjuster: pipeBase.QuantaAdjuster) -> None:
        """Remove quanta whose exposure's ``observation_type`` is not in ``observationTypes``."""
        assert self.config is not None
        wanted = {name.lower() for name in self.config.observationTypes}
        if not wanted:
            return
        for data_id in list(adjuster.iter_data_ids()):
            record = adjuster.expand_quantum_data_id(data_id).records["exposure"]
            observation_type = (record.observation_type or "").lower() if record is not None else ""
            if observation_type not in wanted:
                adjuster.remove_quantum(data_id)


class ObservationTypesConfig(pexConfig.Config):
    """The ``observationTypes`` selection shared by the ISR tasks that may skip exposures."""

    observationTypes = pexConfig.ListField[str](
        doc="Exposure observation types to process (case-insensitive); empty means every type.",
        default=[],
    )


class SelectedIsrConfig(IsrTaskConfig, ObservationTypesConfig, pipelineConnections=SelectedIsrConnections):
    """`IsrTaskConfig` plus the observation types to process."""


class SelectedIsrTask(IsrTask):
    """The core numpy ISR, run only on exposures of the configured observation types."""

    ConfigClass = SelectedIsrConfig  # type: ignore[assignment]
    _DefaultName = "selectedIsr"
