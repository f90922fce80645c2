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

"""Message dataclasses of the embedded runtime, built from `interfaces` (one class per topic).

Every message has the salobj private fields (``private_sndStamp``, ``private_rcvStamp``,
``private_efdStamp``, ``private_kafkaStamp``, ``private_seqNum``, ``private_revCode``,
``private_identity``, ``private_origin``), ``salIndex`` for indexed components, then the topic fields.
Messages are copied (never shared) between writers and readers with `copy_message`.

May import: the standard library and `interfaces`.
"""

__all__ = [
    "BaseMsgType",
    "PRIVATE_FIELDS",
    "ACKCMD_FIELDS",
    "get_data_type",
    "get_ackcmd_type",
    "copy_message",
    "coerce_message",
    "is_ackcmd",
    "values_equal",
]

import dataclasses
import math
from typing import TYPE_CHECKING, Any, ClassVar

from .interfaces import ComponentSpec, FieldSpec, parse_fields

#: Private fields present in every message.
PRIVATE_FIELDS: tuple[FieldSpec, ...] = parse_fields(
    "private_sndStamp: float, private_rcvStamp: float, private_efdStamp: float, private_kafkaStamp: float, "
    "private_seqNum: int, private_revCode: str, private_identity: str, private_origin: int"
)

#: Fields of the ``ackcmd`` topic (besides the private fields and salIndex).
ACKCMD_FIELDS: tuple[FieldSpec, ...] = parse_fields(
    "ack: int, error: int, result: str, identity: str, origin: int, cmdtype: int, timeout: float"
)

_SAL_INDEX = FieldSpec(name="salIndex", type=int)

_KIND_PREFIX = {"command": "command_", "event": "logevent_", "telemetry": "", "ackcmd": ""}


class BaseMsgType:
    """Base class of all message dataclasses.

    Class attributes describe the topic: ``component_name``, ``topic_kind`` (``command``, ``event``,
    ``telemetry`` or ``ackcmd``), ``topic_name`` (bare name) and ``sal_name``.
    """

    component_name: ClassVar[str] = ""
    topic_kind: ClassVar[str] = ""
    topic_name: ClassVar[str] = ""
    sal_name: ClassVar[str] = ""
    field_specs: ClassVar[tuple[FieldSpec, ...]] = ()
    topic_field_names: ClassVar[tuple[str, ...]] = ()
    field_names: ClassVar[frozenset[str]] = frozenset()
    array_fields: ClassVar[tuple[str, ...]] = ()
    scalar_coercions: ClassVar[tuple[tuple[str, type], ...]] = ()
    array_coercions: ClassVar[tuple[tuple[str, type, int], ...]] = ()

    if TYPE_CHECKING:

        def __init__(self, **kwargs: Any) -> None:
            """Fields are made at run time (tell type checkers)."""

        def __getattr__(self, name: str) -> Any:
            """Fields are made at run time (tell type checkers)."""

        def __setattr__(self, name: str, value: Any) -> None:
            """Fields are made at run time (tell type checkers)."""

    def get_vars(self) -> dict[str, Any]:
        """Return a dict of field name: value (arrays copied)."""
        data = dict(self.__dict__)
        for name in self.array_fields:
            data[name] = list(data[name])
        return data


_cache: dict[tuple[str, str, str], tuple[ComponentSpec, type[BaseMsgType]]] = {}


def _make_class(
    spec: ComponentSpec, kind: str, topic_name: str, topic_fields: tuple[FieldSpec, ...]
) -> type[BaseMsgType]:
    sal_name = "ackcmd" if kind == "ackcmd" else _KIND_PREFIX[kind] + topic_name
    coerced_fields = ((_SAL_INDEX,) if spec.indexed else ()) + topic_fields
    all_fields = PRIVATE_FIELDS + coerced_fields
    dc_fields: list[tuple[str, Any, Any]] = []
    for field in all_fields:
        if field.is_array:
            dc_fields.append(
                (
                    field.name,
                    list,
                    dataclasses.field(default_factory=field.default),
                )
            )
        else:
            dc_fields.append((field.name, field.type, dataclasses.field(default=field.default())))
    cls = dataclasses.make_dataclass(
        f"{spec.name}_{sal_name}",
        dc_fields,
        bases=(BaseMsgType,),
        kw_only=True,
        namespace={
            "component_name": spec.name,
            "topic_kind": kind,
            "topic_name": topic_name,
            "sal_name": sal_name,
            "field_specs": all_fields,
            "topic_field_names": tuple(field.name for field in topic_fields),
            "field_names": frozenset(field.name for field in all_fields),
            "array_fields": tuple(field.name for field in all_fields if field.is_array),
            "scalar_coercions": tuple(
                (field.name, field.type) for field in coerced_fields if not field.is_array
            ),
            "array_coercions": tuple(
                (field.name, field.type, field.count) for field in coerced_fields if field.is_array
            ),
        },
    )
    cls.__module__ = __name__
    return cls  # type: ignore[return-value]


def get_data_type(spec: ComponentSpec, kind: str, topic_name: str) -> type[BaseMsgType]:
    """Return the message dataclass of a topic (cached).

    Parameters
    ----------
    spec : `ComponentSpec`
        The component.
    kind : `str`
        ``command``, ``event`` or ``telemetry``.
    topic_name : `str`
        Bare topic name.

    Raises
    ------
    ValueError
        If the topic does not exist.
    """
    key = (spec.name, kind, topic_name)
    cached = _cache.get(key)
    if cached is not None and cached[0] is spec:
        return cached[1]
    topics = {"command": spec.commands, "event": spec.events, "telemetry": spec.telemetry}[kind]
    if topic_name not in topics:
        raise ValueError(f"{spec.name} has no {kind} {topic_name!r}")
    cls = _make_class(spec, kind, topic_name, topics[topic_name].fields)
    _cache[key] = (spec, cls)
    return cls


def get_ackcmd_type(spec: ComponentSpec) -> type[BaseMsgType]:
    """Return the ``ackcmd`` message dataclass of a component (cached)."""
    key = (spec.name, "ackcmd", "ackcmd")
    cached = _cache.get(key)
    if cached is not None and cached[0] is spec:
        return cached[1]
    cls = _make_class(spec, "ackcmd", "ackcmd", ACKCMD_FIELDS)
    _cache[key] = (spec, cls)
    return cls


def is_ackcmd(obj: Any) -> bool:
    """Is ``obj`` a command acknowledgement message?"""
    return isinstance(obj, BaseMsgType) and obj.topic_kind == "ackcmd"


def copy_message(msg: BaseMsgType) -> BaseMsgType:
    """Return a copy of a message that shares no mutable state with it."""
    cls = type(msg)
    new = object.__new__(cls)
    fields = msg.__dict__.copy()
    for name in cls.array_fields:
        fields[name] = list(fields[name])
    new.__dict__ = fields
    return new


def _coerce_scalar(name: str, ftype: type, value: Any) -> Any:
    if ftype is str:
        if not isinstance(value, str):
            raise TypeError(f"Field {name} must be a str, not {value!r}")
        return str(value)
    if ftype is float:
        try:
            return float(value)
        except (TypeError, ValueError) as e:
            raise TypeError(f"Field {name} must be a float, not {value!r}") from e
    if ftype is int:
        if isinstance(value, float):
            if not value.is_integer():
                raise TypeError(f"Field {name} must be an int, not {value!r}")
            return int(value)
        try:
            return int(value)
        except (TypeError, ValueError) as e:
            raise TypeError(f"Field {name} must be an int, not {value!r}") from e
    # bool
    if isinstance(value, str):
        raise TypeError(f"Field {name} must be a bool, not {value!r}")
    return bool(value)


def coerce_message(msg: BaseMsgType) -> None:
    """Convert the fields of a message in place to their declared types.

    Enum members become plain ints, numpy scalars become Python scalars, tuples and arrays become
    lists. Values that do not fit (e.g. a str in a float field, a list of the wrong length) raise.
    The private fields are not checked (the runtime sets them).

    Raises
    ------
    TypeError
        If a field cannot be converted.
    """
    fields = msg.__dict__
    cls = type(msg)
    for name, ftype in cls.scalar_coercions:
        value = fields[name]
        if type(value) is not ftype:
            fields[name] = _coerce_scalar(name, ftype, value)
    for name, ftype, count in cls.array_coercions:
        value = fields[name]
        try:
            values = list(value)
        except TypeError:
            raise TypeError(f"Field {name} must be a sequence of {count} items") from None
        if len(values) != count:
            raise TypeError(f"Field {name} must have {count} items, not {len(values)}")
        fields[name] = [v if type(v) is ftype else _coerce_scalar(name, ftype, v) for v in values]


def values_equal(old: Any, new: Any) -> bool:
    """Compare two field values as ``WriteTopic.set`` does (NaN equals NaN, lists elementwise)."""
    if isinstance(old, list) or isinstance(new, (list, tuple)):
        try:
            new_list = list(new)
        except TypeError:
            return False
        if len(old) != len(new_list):
            return False
        return all(values_equal(a, b) for a, b in zip(old, new_list, strict=True))
    if old == new:
        return True
    return isinstance(old, float) and isinstance(new, float) and math.isnan(old) and math.isnan(new)
