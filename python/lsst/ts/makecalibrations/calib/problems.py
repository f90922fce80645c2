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

"""The error model of the configuration: one `ConfigProblem` per thing wrong, all raised at once as
one `ConfigError`.

May import: the standard library.
"""

from __future__ import annotations

__all__ = ["ConfigProblem", "ConfigError"]

import dataclasses
from collections.abc import Iterable


@dataclasses.dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a configuration.

    Attributes
    ----------
    key : `str` or `None`
        Configuration key concerned (``exp_times_flat``, ``exposure_ids.bias``, ``detectors[2]``),
        or `None` for a problem of the whole text (a YAML syntax error).
    message : `str`
        What is wrong and, when possible, how to fix it.
    line, column : `int` or `None`
        1-based position in the YAML text, when known.
    """

    key: str | None
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        prefix = f"{self.key}: " if self.key else ""
        where = ""
        if self.line is not None:
            where = f" (line {self.line}" + (f", column {self.column})" if self.column is not None else ")")
        return f"{prefix}{self.message}{where}"


class ConfigError(ValueError):
    """A configuration is invalid; ``problems`` lists every problem found.

    Parameters
    ----------
    problems : `~collections.abc.Iterable` [`ConfigProblem`]
        The problems, at least one.
    """

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        if not self.problems:
            raise ValueError("ConfigError needs at least one problem")
        super().__init__(self.describe())

    def describe(self) -> str:
        """Return all problems as one message, one problem per line."""
        n = len(self.problems)
        lines = [f"Invalid configuration ({n} problem{'s' if n > 1 else ''}):"]
        lines += [f"  - {problem}" for problem in self.problems]
        return "\n".join(lines)

    @property
    def keys(self) -> list[str | None]:
        """The keys named by the problems, in order."""
        return [problem.key for problem in self.problems]
