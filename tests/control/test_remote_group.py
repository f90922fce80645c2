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

"""RemoteGroup against the simulated CSCs: naming, usages, states and transitions."""

from __future__ import annotations

import logging

import pytest

from lsst.ts.makecalibrations.control import RemoteGroup, Usages
from lsst.ts.makecalibrations.control.remote_group import component_attr_name
from lsst.ts.makecalibrations.sal import salobj
from lsst.ts.makecalibrations.sim.faults import FaultPlan
from lsst.ts.makecalibrations.sim.observatory import SimulatedObservatory
from lsst.ts.makecalibrations.sim.options import ObservatoryOptions


def test_component_attr_name() -> None:
    assert component_attr_name("OCPS:2") == "ocps_2"
    assert component_attr_name("CCCamera") == "cccamera"


async def test_naming_and_state_queries() -> None:
    async with SimulatedObservatory(ObservatoryOptions(time_scale=100.0), shutdown_delay=0.0):
        log = logging.getLogger("parent")
        async with RemoteGroup(["OCPS:2", "CCCamera"], log=log) as group:
            assert group.log.name == "parent.RemoteGroup"
            assert group.components_attr == ["ocps_2", "cccamera"]
            assert group.components == ["OCPS:2", "CCCamera"]
            assert group.rem.ocps_2.salinfo.name_index == "OCPS:2"
            assert group.check.ocps_2 and group.check.cccamera
            assert group.components_to_check() == ["ocps_2", "cccamera"]
            assert await group.get_state("ocps_2") == salobj.State.ENABLED
            await group.assert_all_enabled()

            await group.set_state(salobj.State.DISABLED, components=["ocps_2"])
            assert await group.get_state("ocps_2") == salobj.State.DISABLED
            assert await group.get_state("cccamera") == salobj.State.ENABLED
            with pytest.raises(AssertionError) as excinfo:
                await group.assert_all_enabled("Cannot take calibrations.")
            assert str(excinfo.value) == (
                "The following components are not enabled: ['OCPS:2']. Cannot take calibrations."
            )
            # A component that is not checked is not asserted.
            group.check.ocps_2 = False
            await group.assert_all_enabled()
            group.check.ocps_2 = True

            await group.standby()
            assert await group.get_state("cccamera") == salobj.State.STANDBY
            group.concurrent_operation = False
            await group.enable()
            assert [await group.get_state(c) for c in group.components_attr] == [salobj.State.ENABLED] * 2


async def test_unknown_component_times_out() -> None:
    async with RemoteGroup(["OCPS:3"]) as group:
        group.fast_timeout = 0.1
        group.long_long_timeout = 0.1
        assert await group.get_state("ocps_3", ignore_timeout=True) is None
        with pytest.raises(TimeoutError, match="ocps_3"):
            await group.get_state("ocps_3")
        with pytest.raises(AssertionError, match="OCPS:3"):
            await group.assert_all_enabled()
        with pytest.raises(RuntimeError, match=r"Failed to transition \['ocps_3'\]"):
            await group.enable()
        with pytest.raises(RuntimeError, match="Unknown components"):
            await group.set_state(salobj.State.ENABLED, components=["nope"])


async def test_ocps_not_enabled() -> None:
    faults = FaultPlan(ocps_initial_state=salobj.State.STANDBY)
    async with SimulatedObservatory(ObservatoryOptions(time_scale=100.0), faults=faults, shutdown_delay=0.0):
        async with RemoteGroup(["OCPS:2"]) as ocps_group:
            with pytest.raises(AssertionError, match=r"not enabled: \['OCPS:2'\]"):
                await ocps_group.assert_all_enabled()
            async with salobj.assertRaisesAckError(ack=salobj.SalRetCode.CMD_FAILED):
                await ocps_group.rem.ocps_2.cmd_execute.set_start(pipeline="cpBias.yaml", timeout=5)
            await ocps_group.enable()
            await ocps_group.assert_all_enabled()


async def test_usages() -> None:
    async with SimulatedObservatory(ObservatoryOptions(time_scale=100.0), shutdown_delay=0.0):
        dry = RemoteGroup(["OCPS:2"], intended_usage=Usages.DryTest)
        assert dry.rem.ocps_2 is None and dry.check.ocps_2 is False
        assert dry.start_task is None
        await dry.assert_all_enabled()
        await dry.close()

        async with RemoteGroup(["OCPS:2"], intended_usage=Usages.MonitorState) as monitor:
            remote = monitor.rem.ocps_2
            assert hasattr(remote, "evt_summaryState")
            assert not hasattr(remote, "evt_job_result")
            assert not hasattr(remote, "cmd_execute")
            assert await monitor.get_state("ocps_2") == salobj.State.ENABLED

        with pytest.raises(ValueError, match="intended_usage"):
            RemoteGroup(["OCPS:2"], intended_usage=1 << 20)
        with pytest.raises(ValueError, match="Duplicate"):
            RemoteGroup(["OCPS:2", "OCPS:2"])
