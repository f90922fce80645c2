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

"""`DefaultingValidator`: JSON-schema (draft-07) validation that fills in defaults (salobj ``validator.py``).

May import: the standard library and jsonschema.
"""

from __future__ import annotations

__all__ = ["DefaultingValidator"]

import copy
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import jsonschema.validators


def _extend_with_default(validator_class: Any) -> Any:
    """Return a validator class whose ``properties`` keyword sets missing values from ``default``."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(
        validator: Any, properties: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
    ) -> Iterator[jsonschema.ValidationError]:
        if validator.is_type(instance, "object"):
            for name, subschema in properties.items():
                if name not in instance and isinstance(subschema, Mapping) and "default" in subschema:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_DefaultingDraft7Validator = _extend_with_default(jsonschema.Draft7Validator)


class DefaultingValidator:
    """Validate a dict against a draft-07 schema and return a copy with the defaults filled in.

    A property of ``type: object`` that has ``properties`` but no ``default`` gets a default dict
    built from its sub-properties' defaults (one level deep only, if any sub-property has one).

    Parameters
    ----------
    schema : `dict`
        The JSON schema (draft-07).

    Raises
    ------
    jsonschema.SchemaError
        If the schema is invalid.
    """

    def __init__(self, schema: Mapping[str, Any]) -> None:
        jsonschema.Draft7Validator.check_schema(schema)
        self.schema = schema
        defaulting_schema = copy.deepcopy(dict(schema))
        for subschema in defaulting_schema.get("properties", {}).values():
            if (
                isinstance(subschema, dict)
                and subschema.get("type") == "object"
                and "properties" in subschema
                and "default" not in subschema
            ):
                sub_defaults = {
                    name: copy.deepcopy(prop["default"])
                    for name, prop in subschema["properties"].items()
                    if isinstance(prop, Mapping) and "default" in prop
                }
                if sub_defaults:
                    subschema["default"] = sub_defaults
        self.final_validator = jsonschema.Draft7Validator(schema)
        self.defaults_validator = _DefaultingDraft7Validator(defaulting_schema)

    def validate(self, data_dict: Mapping[str, Any] | None) -> dict[str, Any]:
        """Return a validated copy of ``data_dict`` with the defaults filled in.

        Parameters
        ----------
        data_dict : `dict` or `None`
            Data to validate; None is treated as ``{}``.

        Raises
        ------
        jsonschema.ValidationError
            If the data (or a default) does not match the schema, or is not a dict.
        """
        if data_dict is None:
            data_dict = {}
        elif not isinstance(data_dict, Mapping):
            raise jsonschema.ValidationError(f"{data_dict!r} is not a dict")
        result = copy.deepcopy(dict(data_dict))
        self.defaults_validator.validate(result)
        self.final_validator.validate(result)
        return result
