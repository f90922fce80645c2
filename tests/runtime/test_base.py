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

"""Utilities, enums, message types, interfaces and DefaultingValidator of the runtime."""

import asyncio
import itertools
import time

import jsonschema
import pytest
import yaml

from lsst.ts.makecalibrations import runtime as salobj
from lsst.ts.makecalibrations.runtime import SalRetCode, ScriptState, State


def test_enum_values() -> None:
    assert [
        SalRetCode.CMD_ACK,
        SalRetCode.CMD_INPROGRESS,
        SalRetCode.CMD_STALLED,
        SalRetCode.CMD_COMPLETE,
    ] == [
        300,
        301,
        302,
        303,
    ]
    assert [
        SalRetCode.CMD_NOPERM,
        SalRetCode.CMD_NOACK,
        SalRetCode.CMD_FAILED,
        SalRetCode.CMD_ABORTED,
        SalRetCode.CMD_TIMEOUT,
    ] == [-300, -301, -302, -303, -304]
    assert (State.DISABLED, State.ENABLED, State.FAULT, State.OFFLINE, State.STANDBY) == (1, 2, 3, 4, 5)
    assert [s.value for s in ScriptState] == list(range(12))
    assert ScriptState.CONFIGURE_FAILED == 11
    assert (salobj.MetadataCoordSys.ICRS, salobj.MetadataRotSys.SKY, salobj.MetadataDome.EITHER) == (2, 2, 3)
    assert (
        SalRetCode.CMD_STALLED in salobj.DONE_ACK_CODES and SalRetCode.CMD_STALLED in salobj.FAILED_ACK_CODES
    )
    assert SalRetCode.CMD_COMPLETE in salobj.DONE_ACK_CODES
    assert SalRetCode.CMD_COMPLETE not in salobj.FAILED_ACK_CODES
    assert SalRetCode.CMD_INPROGRESS not in salobj.DONE_ACK_CODES


@pytest.mark.parametrize(
    "name, expected",
    [("OCPS:2", ("OCPS", 2)), ("CCCamera", ("CCCamera", 0)), ("Script:0", ("Script", 0))],
)
def test_name_to_name_index(name: str, expected: tuple[str, int]) -> None:
    assert salobj.name_to_name_index(name) == expected


@pytest.mark.parametrize("name", ["", ":1", "OCPS:x", "OCPS:1:2", "bad name"])
def test_name_to_name_index_errors(name: str) -> None:
    with pytest.raises(ValueError):
        salobj.name_to_name_index(name)


def test_wildcard_index() -> None:
    with pytest.raises(salobj.WildcardIndexError):
        salobj.name_to_name_index("Script:*")


def test_index_generator() -> None:
    assert list(itertools.islice(salobj.index_generator(), 3)) == [1, 2, 3]
    assert list(itertools.islice(salobj.index_generator(imin=5, imax=7, i0=6), 5)) == [6, 7, 5, 6, 7]
    with pytest.raises(ValueError):
        next(salobj.index_generator(imin=3, imax=2))
    with pytest.raises(ValueError):
        next(salobj.index_generator(imin=1, imax=3, i0=4))


def test_current_tai() -> None:
    assert salobj.current_tai() - time.time() == pytest.approx(37.0, abs=0.1)


async def test_make_done_future() -> None:
    future = salobj.make_done_future()
    assert future.done() and future.result() is None
    assert await future is None


def test_ack_error_str_and_attributes() -> None:
    ackcmd_type = salobj.get_ackcmd_type(salobj.get_component_spec("OCPS"))
    ackcmd = ackcmd_type(private_seqNum=12, ack=SalRetCode.CMD_FAILED, error=1, result="Failed: oops")
    error = salobj.AckError("Command failed", ackcmd=ackcmd)
    assert error.ackcmd is ackcmd
    assert str(error) == (
        "msg='Command failed', ackcmd=(ackcmd private_seqNum=12, ack=<SalRetCode.CMD_FAILED: -302>, "
        "error=1, result='Failed: oops')"
    )
    assert issubclass(salobj.AckTimeoutError, salobj.AckError)
    assert issubclass(salobj.ExpectedError, Exception)


def test_message_types() -> None:
    spec = salobj.get_component_spec("CCCamera")
    take_images = salobj.get_data_type(spec, "command", "takeImages")
    msg = take_images()
    assert (msg.numImages, msg.expTime, msg.shutter, msg.keyValueMap) == (0, 0.0, False, "")
    assert not hasattr(msg, "salIndex")  # CCCamera is not indexed
    for private in ("private_sndStamp", "private_seqNum", "private_identity", "private_origin"):
        assert hasattr(msg, private)
    filters = salobj.get_data_type(spec, "event", "availableFilters")()
    assert filters.maxSlowChangeTime == [0.0] * 6
    assert (
        filters.maxSlowChangeTime
        is not salobj.get_data_type(spec, "event", "availableFilters")().maxSlowChangeTime
    )
    ocps_result = salobj.get_data_type(salobj.get_component_spec("OCPS"), "event", "job_result")(exit_code=3)
    assert (ocps_result.salIndex, ocps_result.exit_code, ocps_result.job_id) == (0, 3, "")
    assert take_images.sal_name == "command_takeImages"
    copied = salobj.copy_message(filters)
    copied.maxFastChangeTime[0] = 1.0
    assert filters.maxFastChangeTime[0] == 0.0
    with pytest.raises(TypeError):
        take_images(numImages=1, noSuchField=2)
    with pytest.raises(ValueError):
        salobj.get_data_type(spec, "event", "noSuchEvent")


def test_interfaces() -> None:
    expected = {"Script": True, "CCCamera": False, "CCHeaderService": False, "CCOODS": False, "OCPS": True}
    for name, indexed in expected.items():
        assert salobj.COMPONENTS[name].indexed is indexed
    script = salobj.get_component_spec("Script")
    assert set(script.commands) == {
        "configure",
        "setGroupId",
        "run",
        "resume",
        "stop",
        "setCheckpoints",
        "setLogLevel",
    }
    assert "summaryState" not in script.events and "errorCode" not in script.events
    assert {"state", "description", "metadata", "checkpoints", "heartbeat", "logLevel", "logMessage"} <= set(
        script.events
    )
    metadata_fields = {f.name: f for f in script.events["metadata"].fields}
    assert metadata_fields["position"].count == 2 and metadata_fields["position"].type is float
    camera = salobj.get_component_spec("CCCamera")
    assert "enterControl" in camera.commands
    assert {"configurationsAvailable", "largeFileObjectAvailable", "endReadout", "ccsCommandState"} <= set(
        camera.events
    )
    assert [f.name for f in camera.commands["takeImages"].fields] == [
        "numImages",
        "expTime",
        "shutter",
        "sensors",
        "keyValueMap",
        "obsNote",
    ]
    ocps = salobj.get_component_spec("OCPS")
    assert {"execute", "abort_job", "start", "enable"} <= set(ocps.commands)
    assert [f.name for f in ocps.events["job_result"].fields] == ["job_id", "exit_code", "result"]
    oods = salobj.get_component_spec("CCOODS")
    assert "largeFileObjectAvailable" not in oods.events
    assert "largeFileObjectAvailable" in salobj.get_component_spec("CCHeaderService").events
    with pytest.raises(ValueError, match="Unknown SAL component"):
        salobj.get_component_spec("NoSuchThing")
    with pytest.raises(ValueError):
        salobj.parse_fields("x: complex")


async def test_register_component() -> None:
    spec = salobj.register_component(
        salobj.component_spec(
            "RuntimeTestExtra", indexed=False, generics=["csc"], events={"ping": "count: int"}
        )
    )
    assert "summaryState" in spec.events and "ping" in spec.events
    controller = salobj.Controller("RuntimeTestExtra", allow_missing_callbacks=True, do_callbacks=True)
    controller.shutdown_delay = 0
    await controller.start_task
    domain = salobj.Domain()
    remote = salobj.Remote(domain, "RuntimeTestExtra")
    await remote.start_task
    await controller.evt_ping.set_write(count=3)
    assert (await remote.evt_ping.next(flush=False, timeout=1)).count == 3
    await asyncio.gather(controller.close(), domain.close())


SCHEMA = yaml.safe_load(
    """
    $schema: http://json-schema.org/draft-07/schema#
    type: object
    properties:
      n_bias: {type: integer, default: 20, minimum: 1}
      filter: {anyOf: [{type: string}, {type: "null"}], default: null}
      nested:
        type: object
        properties:
          a: {type: number, default: 1.5}
          b: {type: string}
          deeper:
            type: object
            properties:
              c: {type: integer, default: 3}
      no_defaults:
        type: object
        properties:
          x: {type: string}
        required: [x]
      items: {type: array, items: {type: integer}, minContains: 5, default: [1]}
    additionalProperties: false
    """
)


def test_defaulting_validator_fills_defaults() -> None:
    validator = salobj.DefaultingValidator(SCHEMA)
    result = validator.validate(None)
    # One level of nested object defaults; no default dict for objects without sub-defaults.
    assert result == {"n_bias": 20, "filter": None, "nested": {"a": 1.5}, "items": [1]}
    result = validator.validate({"nested": {"b": "x", "deeper": {}}, "n_bias": 2})
    assert result["nested"] == {"a": 1.5, "b": "x", "deeper": {"c": 3}}
    assert result["n_bias"] == 2
    user = {"items": [2]}
    result = validator.validate(user)
    result["items"].append(3)
    assert user == {"items": [2]}  # the input is not modified
    first = validator.validate({})
    first["items"].append(9)
    assert validator.validate({})["items"] == [1]  # defaults are not shared


@pytest.mark.parametrize(
    "data", [{"n_bias": 0}, {"unknown": 1}, {"no_defaults": {}}, {"nested": {"a": "text"}}, [1, 2], "text"]
)
def test_defaulting_validator_rejects(data: object) -> None:
    validator = salobj.DefaultingValidator(SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(data)


def test_defaulting_validator_catches_invalid_defaults_and_schemas() -> None:
    bad_default = {"type": "object", "properties": {"n": {"type": "integer", "default": "three"}}}
    with pytest.raises(jsonschema.ValidationError):
        salobj.DefaultingValidator(bad_default).validate({})
    with pytest.raises(jsonschema.SchemaError):
        salobj.DefaultingValidator({"type": "no-such-type"})
