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

"""Where a task configuration field takes its default when the numpy function it configures has one.

A field that sets a keyword argument of a `pipelines` function (``clip`` -> ``combine_exposures``'s
``nsigma``) takes that keyword's default (`keyword_default`), so cp_pipe's value stands once, in the
function's signature; the functions with a settings dataclass (`pipelines.isr.IsrSettings`,
`pipelines.ptc.PairSettings`...) give the defaults through it instead.

May import: the standard library.
"""

from __future__ import annotations

__all__ = ["keyword_default"]

import inspect
from collections.abc import Callable
from typing import Any


def keyword_default(function: Callable[..., Any], name: str) -> Any:
    """Return the default of the keyword argument ``name`` of ``function``.

    Raises
    ------
    TypeError
        If ``function`` has no argument ``name`` with a default.
    """
    parameter = inspect.signature(function).parameters.get(name)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        raise TypeError(f"{function.__qualname__} has no keyword argument {name!r} with a default.")
    return parameter.default
