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

"""Read cp_verify statistics: the one place that knows how a failure is written.

cp_verify writes, per exposure, either a run-level entry (``verify<Type>Stats``: ``{"SUCCESS": bool,
"FAILURES": [...]}`` with FAILURES such as ``"R22_S21 C17 NOISE"``, ``"R22_S22 SCATTER"`` or
``"SCATTER"``) or an exposure-level dict (``verify<Type>ExpStats``: detector name ->
``{"SUCCESS", "FAILURES"}`` with FAILURES such as ``"C17 NOISE"``, and exposure-level tests as
``"VERIFY": {"EXP": {"SCATTER": bool}}``). Both are read here into `VerifyFailure` records, which the
certification rule (`calib.verification`) and the failure heat map (`report.verification_plot`)
count.

May import: the standard library.
"""

from __future__ import annotations

__all__ = ["VerifyFailure", "run_level_failures", "exposure_level_failures"]

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class VerifyFailure:
    """One failed cp_verify test.

    Attributes
    ----------
    test : `str`
        Test name (``NOISE``, ``SCATTER``, ``GAIN_FROM_FLAT_PAIR`` ...).
    detector : `str` or `None`
        Detector name, `None` for an exposure-level test.
    amp : `str` or `None`
        Amplifier name, `None` for a detector- or exposure-level test.
    """

    test: str
    detector: str | None = None
    amp: str | None = None


def run_level_failures(entry: Any) -> list[VerifyFailure]:
    """The failures of one exposure's run-level entry (``"<det> <amp> <test>"``, ``"<det> <test>"``
    or ``"<test>"``); an entry that is not a mapping has none."""
    failures = entry.get("FAILURES", []) if isinstance(entry, Mapping) else []
    out = []
    for failure in failures or []:
        tokens = str(failure).split()
        if len(tokens) >= 3:
            out.append(VerifyFailure(tokens[-1], tokens[0], tokens[1]))
        elif len(tokens) == 2:
            out.append(VerifyFailure(tokens[1], tokens[0]))
        elif tokens:
            out.append(VerifyFailure(tokens[0]))
    return out


def exposure_level_failures(exp_entry: Mapping[str, Any]) -> list[VerifyFailure]:
    """The failures of one exposure's exposure-level dict (detector keys with ``"<amp> <test>"`` or
    ``"<test>"`` FAILURES; failed exposure-level tests under ``VERIFY``)."""
    out = []
    for det, entry in exp_entry.items():
        if det in ("SUCCESS", "EXP") or not isinstance(entry, Mapping):
            continue
        if det == "VERIFY":
            for tests in entry.values():
                if isinstance(tests, Mapping):
                    out += [
                        VerifyFailure(str(name)) for name, ok in tests.items() if name != "SUCCESS" and not ok
                    ]
            continue
        for failure in entry.get("FAILURES", []) or []:
            tokens = str(failure).split()
            if len(tokens) >= 2:
                out.append(VerifyFailure(tokens[-1], str(det), tokens[0]))
            elif tokens:
                out.append(VerifyFailure(tokens[0], str(det)))
    return out
