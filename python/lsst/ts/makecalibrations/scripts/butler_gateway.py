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

"""The script's door to the data butler: asynchronous wrappers of the `butler` room's functions.

The butler functions are synchronous (SQLite registry, file datastore); the script calls them in a
worker thread, one at a time, so the event loop (and the SAL traffic) never blocks on them. Each
method imports its butler function inside the call, in the worker thread: the first import of
daf_butler takes about a second, which must not stall the event loop (and the camera traffic), and
the script can be imported and configured (without certification) where no butler is installed.

May import: `butler` (lazily) and the standard library.
"""

from __future__ import annotations

__all__ = ["ButlerGateway", "ClaimRefusedError"]

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

_T = TypeVar("_T")


class ClaimRefusedError(RuntimeError):
    """Another run has claimed a certification this run would make (`butler.claims`)."""


class ButlerGateway:
    """Runs the butler calls the script needs, in a thread, serialised.

    Parameters
    ----------
    repo : `str`
        Butler repository (path or URI).
    """

    def __init__(self, repo: str) -> None:
        self.repo = repo
        self._lock = asyncio.Lock()

    async def _run(self, call: Callable[[], _T]) -> _T:
        async with self._lock:
            return await asyncio.to_thread(call)

    async def find_conflicts(
        self,
        calib_collection: str,
        dataset_types: Sequence[str],
        begin: str,
        end: str,
        physical_filter: str | None = None,
        detectors: Sequence[int] | None = None,
    ) -> list[Any]:
        """Existing certifications in ``calib_collection`` that overlap ``[begin, end)``."""

        def call() -> list[Any]:
            from ..butler.certification import find_conflicts

            return find_conflicts(
                self.repo,
                calib_collection,
                list(dataset_types),
                begin,
                end,
                physical_filter=physical_filter,
                detectors=None if detectors is None else list(detectors),
            )

        return await self._run(call)

    async def claim_certification(
        self, calib_collection: str, products: Sequence[str], begin: str, end: str, owner: str
    ) -> str | None:
        """Claim what this run will certify (`butler.claims.claim`); a token for `release_claim`.

        Raises
        ------
        ClaimRefusedError
            If another live run has claimed an overlapping certification (the message names it).
        """

        def call() -> str | None:
            from ..butler.claims import CertificationClaimError, claim

            try:
                return claim(self.repo, calib_collection, list(products), begin, end, owner)
            except CertificationClaimError as e:
                raise ClaimRefusedError(str(e)) from e

        return await self._run(call)

    async def release_claim(self, token: str | None) -> None:
        """Drop a claim made by `claim_certification`."""

        def call() -> None:
            from ..butler.claims import release

            release(self.repo, token)

        await self._run(call)

    async def certify(
        self, run_collection: str, calib_collection: str, dataset_type: str, begin: str, end: str
    ) -> int:
        """Certify the ``dataset_type`` datasets of ``run_collection``; return how many."""

        def call() -> int:
            from ..butler.certification import certify

            return certify(self.repo, run_collection, calib_collection, dataset_type, begin, end)

        return await self._run(call)

    async def read_verify_stats(self, collection: str, dataset_type: str) -> dict[Any, Any]:
        """Run-level verification statistics (``verifyBiasStats``...) of a verify job."""

        def call() -> dict[Any, Any]:
            from ..butler.readers import read_verify_stats

            return read_verify_stats(self.repo, collection, dataset_type)

        return await self._run(call)

    async def read_verify_exposure_stats(self, collection: str, dataset_type: str) -> dict[int, Any]:
        """Exposure-level verification statistics (``verifyFlatExpStats``...) keyed by exposure id."""

        def call() -> dict[int, Any]:
            from ..butler.readers import read_verify_exposure_stats

            return read_verify_exposure_stats(self.repo, collection, dataset_type)

        return await self._run(call)

    async def collections_have_dataset(self, collections: str, dataset_type: str) -> bool:
        """True if one of the comma-separated ``collections`` holds a ``dataset_type``."""

        def call() -> bool:
            from ..butler.readers import collections_have_dataset

            return collections_have_dataset(self.repo, collections, dataset_type)

        return await self._run(call)

    async def read_ptc_bad_amps(self, collection: str) -> dict[int, dict[str, str]]:
        """Bad amps of the PTCs of a job, ``{detector: {amp: reason}}``."""

        def call() -> dict[int, dict[str, str]]:
            from ..butler.readers import read_ptc_bad_amps

            return read_ptc_bad_amps(self.repo, collection)

        return await self._run(call)

    async def read_ptc_fit_fallbacks(self, collection: str) -> dict[int, str]:
        """Detectors of a PTC job fitted with EXPAPPROXIMATION instead of the configured type, and why."""

        def call() -> dict[int, str]:
            from ..butler.readers import read_ptc_fit_fallbacks

            return read_ptc_fit_fallbacks(self.repo, collection)

        return await self._run(call)

    async def read_pair_gains(self, collection: str) -> list[Any]:
        """Gains per flat pair, detector and amplifier found in a PTC or gain job's collection."""

        def call() -> list[Any]:
            from ..butler.readers import read_pair_gains

            return list(read_pair_gains(self.repo, collection))

        return await self._run(call)

    async def repository_problem(self) -> str | None:
        """Why the repository cannot be used by a run (missing, a file, read-only...), or `None`."""

        def call() -> str | None:
            from ..butler.checks import repository_problem

            return repository_problem(self.repo)

        return await self._run(call)

    async def outdated_dataset_types(self) -> dict[str, tuple[str, str]]:
        """Dataset types registered by an older version with other dimensions: ``{name: (pipeline
        file stem that writes it, problem)}`` (`butler.checks`)."""

        def call() -> dict[str, tuple[str, str]]:
            from ..butler.checks import outdated_dataset_types

            return outdated_dataset_types(self.repo)

        return await self._run(call)

    async def collection_types(self, names: Sequence[str]) -> dict[str, str | None]:
        """Type name (``RUN``, ``CALIBRATION``...) of each collection; `None` if it does not exist."""

        def call() -> dict[str, str | None]:
            from ..butler.checks import collection_types

            return collection_types(self.repo, list(names))

        return await self._run(call)

    async def exposure_observation_types(self, exposure_ids: Sequence[int]) -> dict[int, str]:
        """Observation type (``bias``, ``dark``, ``flat``...) of each exposure found in the repo."""

        def call() -> dict[int, str]:
            from ..butler.readers import exposure_observation_types

            return exposure_observation_types(self.repo, list(exposure_ids))

        return await self._run(call)

    async def raw_detectors(self, exposure_ids: Sequence[int]) -> dict[int, list[int]]:
        """Detectors with a ``raw`` of each exposure registered in the repo (`butler.readers`)."""

        def call() -> dict[int, list[int]]:
            from ..butler.readers import raw_detectors

            return raw_detectors(self.repo, list(exposure_ids))

        return await self._run(call)
