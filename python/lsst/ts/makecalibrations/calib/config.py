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

"""Configuration of the calibration script: one import for the names of its four modules.

* `calib.model`: `CalibConfig`, `ImageType`, the schema (``schema.yaml``, the single source of the
  configuration keys, their types, defaults and descriptions);
* `calib.problems`: `ConfigProblem`, `ConfigError` (every problem found, raised at once);
* `calib.yaml_text`: bounded YAML parsing with line and column;
* `calib.validation`: `parse_config_text`, `validate_config` and the cross-field rules;
* `calib.flat_pairs`: the flat-pairing rule.

May import: the calib modules above.
"""

from __future__ import annotations

__all__ = [
    "ImageType",
    "SCRIPT_MODES",
    "EXTRA_PRODUCT_KEYS",
    "ConfigProblem",
    "ConfigError",
    "CalibConfig",
    "load_schema",
    "schema_defaults",
    "parse_config_text",
    "validate_config",
    "find_flat_pairs",
    "COLLECTION_TEMPLATE_FIELDS",
    "resolve_templates",
    "check_text_size",
    "check_text_bounds",
    "exp_times_lengths",
    "split_exp_times",
    "MAX_CONFIG_CHARS",
    "MAX_YAML_NODES",
    "MAX_YAML_DEPTH",
]

from .flat_pairs import find_flat_pairs
from .model import (
    COLLECTION_TEMPLATE_FIELDS,
    EXTRA_PRODUCT_KEYS,
    SCRIPT_MODES,
    CalibConfig,
    ImageType,
    exp_times_lengths,
    load_schema,
    resolve_templates,
    schema_defaults,
    split_exp_times,
)
from .problems import ConfigError, ConfigProblem
from .validation import parse_config_text, validate_config
from .yaml_text import MAX_CONFIG_CHARS, MAX_YAML_DEPTH, MAX_YAML_NODES, check_text_bounds, check_text_size
