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

"""Topic definitions of the embedded runtime: the subset of ts_xml that this project uses.

Each component lists its commands, events and telemetry with typed fields. Field types are
`int`, `float`, `str` and `bool` (ts_xml long/int/short/byte -> int, double/float -> float,
string -> str, boolean -> bool); arrays have a fixed length. The generic topics (SALGenerics.xml)
are added per component from the generics it declares (``csc``, ``configurable``, ``enterControl``,
``largeFileObjectAvailable``).

May import: the standard library only.
"""

__all__ = [
    "FieldSpec",
    "TopicSpec",
    "ComponentSpec",
    "COMPONENTS",
    "get_component_spec",
    "component_spec",
    "register_component",
    "parse_fields",
]

import dataclasses
import re
from collections.abc import Iterable, Mapping

_TYPES: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool}
_FIELD_RE = re.compile(
    r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*:\s*(?P<type>int|float|str|bool)(\[(?P<count>\d+)\])?\s*$"
)


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """One field of a topic.

    Parameters
    ----------
    name : `str`
        Field name.
    type : `type`
        One of `int`, `float`, `str`, `bool`.
    count : `int`
        Array length; 0 for a scalar.
    """

    name: str
    type: type
    count: int = 0

    @property
    def is_array(self) -> bool:
        """Is this an array field?"""
        return self.count > 0

    def default(self) -> object:
        """Return the default value: 0, 0.0, "", False or a list of those."""
        scalar = self.type()
        return [scalar] * self.count if self.count else scalar


@dataclasses.dataclass(frozen=True)
class TopicSpec:
    """One topic: a name and its fields.

    Parameters
    ----------
    name : `str`
        Bare topic name, e.g. ``summaryState``.
    fields : `tuple` [`FieldSpec`]
        The topic-specific fields (without the private fields and salIndex).
    """

    name: str
    fields: tuple[FieldSpec, ...] = ()


@dataclasses.dataclass(frozen=True, eq=False)
class ComponentSpec:
    """The interface of one SAL component.

    Parameters
    ----------
    name : `str`
        Component name, e.g. ``CCCamera``.
    indexed : `bool`
        Is the component indexed (has a ``salIndex`` field)?
    commands, events, telemetry : `dict` [`str`, `TopicSpec`]
        Topics by bare name, including the generic ones.
    """

    name: str
    indexed: bool
    commands: Mapping[str, TopicSpec]
    events: Mapping[str, TopicSpec]
    telemetry: Mapping[str, TopicSpec]


def parse_fields(text: str | Iterable[str]) -> tuple[FieldSpec, ...]:
    """Parse field declarations such as ``"imageName: str, maxSlowChangeTime: float[6]"``.

    Parameters
    ----------
    text : `str` or iterable of `str`
        Comma-separated ``name: type`` or ``name: type[count]`` items (or an iterable of them).

    Returns
    -------
    fields : `tuple` [`FieldSpec`]
        The parsed fields.
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    fields = []
    for item in items:
        if not item.strip():
            continue
        match = _FIELD_RE.match(item)
        if match is None:
            raise ValueError(f"Cannot parse field declaration {item!r}")
        count = int(match["count"]) if match["count"] else 0
        fields.append(FieldSpec(name=match["name"], type=_TYPES[match["type"]], count=count))
    names = [field.name for field in fields]
    if len(set(names)) != len(names):
        raise ValueError(f"Duplicate field names in {text!r}")
    return tuple(fields)


def _topics(decl: Mapping[str, str]) -> dict[str, TopicSpec]:
    return {name: TopicSpec(name=name, fields=parse_fields(fields)) for name, fields in decl.items()}


# Generic topics (SALGenerics.xml).
_CSC_COMMANDS = {
    "start": "configurationOverride: str",
    "enable": "",
    "disable": "",
    "standby": "",
    "exitControl": "",
    "setLogLevel": "level: int, subsystem: str",
}
_MANDATORY_EVENTS = {
    "heartbeat": "heartbeat: bool",
    "logLevel": "level: int, subsystem: str",
    "logMessage": (
        "name: str, level: int, message: str, traceback: str, filePath: str, functionName: str, "
        "lineNumber: int, process: int, timestamp: float"
    ),
    "softwareVersions": "salVersion: str, xmlVersion: str, cscVersion: str, subsystemVersions: str",
}
_CSC_EVENTS = {
    "summaryState": "summaryState: int",
    "errorCode": "errorCode: int, errorReport: str, traceback: str",
    "simulationMode": "mode: int",
}
_CONFIGURABLE_EVENTS = {
    "configurationsAvailable": "overrides: str, version: str, url: str, schemaVersion: str",
    "configurationApplied": "configurations: str, version: str, url: str, schemaVersion: str, otherInfo: str",
}
_LFOA_EVENTS = {
    "largeFileObjectAvailable": (
        "url: str, generator: str, version: float, byteSize: int, checkSum: str, mimeType: str, id: str"
    ),
}


def component_spec(
    name: str,
    *,
    indexed: bool,
    commands: Mapping[str, str] | None = None,
    events: Mapping[str, str] | None = None,
    telemetry: Mapping[str, str] | None = None,
    generics: Iterable[str] = (),
) -> ComponentSpec:
    """Build a `ComponentSpec` from declarations plus the named generics.

    Parameters
    ----------
    name : `str`
        Component name.
    indexed : `bool`
        Is the component indexed?
    commands, events, telemetry : `dict` [`str`, `str`], optional
        Topic name -> comma-separated field declarations (see `parse_fields`).
    generics : iterable of `str`
        Generic groups: ``csc``, ``configurable``, ``enterControl``, ``largeFileObjectAvailable``,
        ``setLogLevel``.
    """
    generics = set(generics)
    unknown = generics - {"csc", "configurable", "enterControl", "largeFileObjectAvailable", "setLogLevel"}
    if unknown:
        raise ValueError(f"Unknown generics {sorted(unknown)}")
    all_commands: dict[str, str] = {}
    all_events: dict[str, str] = dict(_MANDATORY_EVENTS)
    if "csc" in generics:
        all_commands.update(_CSC_COMMANDS)
        all_events.update(_CSC_EVENTS)
    if "setLogLevel" in generics:
        all_commands["setLogLevel"] = _CSC_COMMANDS["setLogLevel"]
    if "enterControl" in generics:
        all_commands["enterControl"] = ""
    if "configurable" in generics:
        all_events.update(_CONFIGURABLE_EVENTS)
    if "largeFileObjectAvailable" in generics:
        all_events.update(_LFOA_EVENTS)
    all_commands.update(commands or {})
    all_events.update(events or {})
    return ComponentSpec(
        name=name,
        indexed=indexed,
        commands=_topics(all_commands),
        events=_topics(all_events),
        telemetry=_topics(telemetry or {}),
    )


_METADATA_FIELDS = (
    "coordinateSystem: int, position: float[2], rotationSystem: int, cameraAngle: float, filters: str, "
    "dome: int, duration: float, nimages: int, instrument: str, survey: str, totalCheckpoints: int"
)

_SCRIPT = component_spec(
    "Script",
    indexed=True,
    generics=["setLogLevel", "largeFileObjectAvailable"],
    commands={
        "configure": (
            "config: str, logLevel: int, pauseCheckpoint: str, stopCheckpoint: str, blockId: str, "
            "executionId: str"
        ),
        "setGroupId": "groupId: str",
        "run": "",
        "resume": "",
        "stop": "",
        "setCheckpoints": "pause: str, stop: str",
    },
    events={
        "state": (
            "state: int, reason: str, groupId: str, lastCheckpoint: str, numCheckpoints: int, blockId: str, "
            "dayObs: int, blockExecution: int, executionId: str"
        ),
        "description": "classname: str, description: str, help: str, remotes: str",
        "metadata": _METADATA_FIELDS,
        "checkpoints": "pause: str, stop: str",
    },
)

# Fields shared by the CCCamera image events.
_IMAGE_HEADER = (
    "additionalKeys: str, additionalValues: str, imagesInSequence: int, imageName: str, imageIndex: int, "
    "imageSource: str, imageController: str, imageDate: str, imageNumber: int, "
    "timestampAcquisitionStart: float"
)
_TRANSITION_ONLY = (
    "readyToTakeImage",
    "notReadyToTakeImage",
    "endTakeImage",
    "startShutterOpen",
    "startShutterClose",
    "endShutterOpen",
    "endShutterClose",
    "prepareToTakeImage",
    "ccsConfigured",
)
_SUBSTATE_EVENTS = (
    "imageReadinessDetailedState",
    "ccsCommandState",
    "shutterDetailedState",
    "filterChangerDetailedState",
    "raftsDetailedState",
    "calibrationDetailedState",
    "offlineDetailedState",
)

_CAMERA_GENERICS = ["csc", "configurable", "enterControl", "largeFileObjectAvailable"]
_CAMERA_COMMANDS = {
    "takeImages": (
        "numImages: int, expTime: float, shutter: bool, sensors: str, keyValueMap: str, obsNote: str"
    ),
    "setFilter": "name: str",
    "startImage": "shutter: bool, sensors: str, keyValueMap: str, obsNote: str, timeout: float",
    "endImage": "",
    "discardRows": "nRows: int",
    "clear": "nClears: int",
    "initImage": "deltaT: float",
    "initGuiders": "roiSpec: str",
    "enableCalibration": "",
    "disableCalibration": "",
    "stop": "",
    "play": "playlist: str, repeat: bool",
    "playlist": "playlist: str, folder: str, images: str",
    "alert": "alertId: str, action: str",
    "generic": "command: str, arguments: str",
}
_CAMERA_EVENTS = {
    "startIntegration": _IMAGE_HEADER + ", exposureTime: float, mode: str, timeout: float",
    "startReadout": _IMAGE_HEADER + ", exposureTime: float, timestampStartOfReadout: float",
    "endReadout": _IMAGE_HEADER + ", requestedExposureTime: float, timestampEndOfReadout: float",
    "endOfImageTelemetry": (
        _IMAGE_HEADER + ", exposureTime: float, imageTag: str, timestampDateObs: float, "
        "timestampDateEnd: float, measuredShutterOpenTime: float, darkTime: float, emulatedImage: str"
    ),
    "availableFilters": (
        "filterNames: str, filterTypes: str, maxChangeAngle: float, maxFastChangeAngle: float, "
        "maxSlowChangeTime: float[6], maxFastChangeTime: float[6]"
    ),
    "startSetFilter": "filterName: str, filterType: str",
    "endSetFilter": "filterName: str, filterType: str, filterSlot: int, filterPosition: float",
    **{name: "timestampTransition: float" for name in _TRANSITION_ONLY},
    **{name: "substate: int, timestampTransition: float" for name in _SUBSTATE_EVENTS},
}
#: Topics of CCCamera and MTCamera that ATCamera lacks (LATISS changes filters in ATSpectrograph).
_FILTER_CHANGER_TOPICS = (
    "setFilter",
    "availableFilters",
    "startSetFilter",
    "endSetFilter",
    "filterChangerDetailedState",
    "ccsConfigured",
)


def _camera(name: str, filter_changer: bool = True) -> ComponentSpec:
    """A camera CSC (CCCamera, MTCamera, ATCamera): the image topics, with or without the filter changer."""
    drop = () if filter_changer else _FILTER_CHANGER_TOPICS
    return component_spec(
        name,
        indexed=False,
        generics=_CAMERA_GENERICS,
        commands={k: v for k, v in _CAMERA_COMMANDS.items() if k not in drop},
        events={k: v for k, v in _CAMERA_EVENTS.items() if k not in drop},
    )


_CCCAMERA = _camera("CCCamera")
_MTCAMERA = _camera("MTCamera")
_ATCAMERA = _camera("ATCamera", filter_changer=False)

_HEADER_SERVICES = tuple(
    component_spec(name, indexed=False, generics=["csc", "largeFileObjectAvailable"])
    for name in ("CCHeaderService", "MTHeaderService", "ATHeaderService")
)
_IMAGE_IN_OODS = "camera: str, obsid: str, raft: str, sensor: str, statusCode: int, description: str"
_OODSES = tuple(
    component_spec(
        name,
        indexed=False,
        generics=["csc"],
        events={
            "imageInOODS": _IMAGE_IN_OODS,
        },
    )
    for name in ("CCOODS", "MTOODS", "ATOODS")
)
#: The LATISS spectrograph: only the filter and disperser topics the LATISS client uses. Its XML is not
#: among the reference ts_xml files of this project; the names follow the public ts_xml ATSpectrograph.
_ATSPECTROGRAPH = component_spec(
    "ATSpectrograph",
    indexed=False,
    generics=["csc", "configurable"],
    commands={
        "changeFilter": "filter: int, name: str",
        "changeDisperser": "disperser: int, name: str",
    },
    events={
        "reportedFilterPosition": (
            "slot: int, name: str, band: str, centralWavelength: float, focusOffset: float, "
            "pointingOffsets: float[2]"
        ),
        "reportedDisperserPosition": (
            "slot: int, name: str, band: str, focusOffset: float, pointingOffsets: float[2]"
        ),
    },
)

#: CSCs simulated (and checked by the LSSTCam script) only for their summary state.
_STATE_ONLY = tuple(
    component_spec(name, indexed=False, generics=["csc", "configurable"])
    for name in ("MTDome", "MTDomeTrajectory")
)

_OCPS = component_spec(
    "OCPS",
    indexed=True,
    generics=["csc", "configurable", "largeFileObjectAvailable"],
    commands={
        "execute": (
            "pipeline: str, version: str, config: str, data_query: str, prereq_jobs: str, "
            "output_dataset_types: str"
        ),
        "abort_job": "job_id: str",
    },
    events={
        "job_result": "job_id: str, exit_code: int, result: str",
        "job_id": "event_name: str, seq_num: int, job_id: str",
    },
)

_NUMBERS = (
    ("boolean0", "bool"),
    ("byte0", "int"),
    ("short0", "int"),
    ("int0", "int"),
    ("long0", "int"),
    ("longLong0", "int"),
    ("unsignedShort0", "int"),
    ("unsignedInt0", "int"),
    ("float0", "float"),
    ("double0", "float"),
)
_SCALARS = ", ".join(f"{name}: {kind}" for name, kind in _NUMBERS) + ", string0: str"
_ARRAYS = ", ".join(f"{name}: {kind}[5]" for name, kind in _NUMBERS)

_TEST = component_spec(
    "Test",
    indexed=True,
    generics=["csc", "configurable", "largeFileObjectAvailable"],
    commands={
        "setScalars": _SCALARS,
        "setArrays": _ARRAYS,
        "wait": "ack: int, duration: float",
        "fault": "",
    },
    events={"scalars": _SCALARS, "arrays": _ARRAYS},
    telemetry={"scalars": _SCALARS, "arrays": _ARRAYS},
)

#: Known components by name.
COMPONENTS: dict[str, ComponentSpec] = {
    spec.name: spec
    for spec in (
        _SCRIPT,
        _CCCAMERA,
        _MTCAMERA,
        _ATCAMERA,
        *_HEADER_SERVICES,
        *_OODSES,
        *_STATE_ONLY,
        _ATSPECTROGRAPH,
        _OCPS,
        _TEST,
    )
}


def get_component_spec(name: str) -> ComponentSpec:
    """Return the interface of a component.

    Raises
    ------
    ValueError
        If the component is unknown.
    """
    try:
        return COMPONENTS[name]
    except KeyError:
        raise ValueError(f"Unknown SAL component {name!r}; known: {sorted(COMPONENTS)}") from None


def register_component(spec: ComponentSpec) -> ComponentSpec:
    """Add (or replace) a component definition, e.g. for a test.

    Parameters
    ----------
    spec : `ComponentSpec`
        The interface, built with `component_spec` (``generics=["csc"]`` for a CSC).

    Returns
    -------
    spec : `ComponentSpec`
        The registered interface.
    """
    COMPONENTS[spec.name] = spec
    return spec
