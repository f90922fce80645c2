"""The script's door to the data butler: asynchronous wrappers of the `butler` room's functions.

The butler functions are synchronous (SQLite registry, file datastore); the script calls them in a
worker thread, one at a time, so the event loop (and the SAL traffic) never blocks on them. The
butler modules are imported on first use, so the script can be imported and configured (without
certification) where no butler is installed.

May import: `butler` (lazily) and the standard library.
"""

from __future__ import annotations

__all__ = ["ButlerGateway", "ClaimRefusedError"]

import asyncio
import importlib
from collections.abc import Sequence
from typing import Any


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

    @staticmethod
    def _module(name: str) -> Any:
        return importlib.import_module(f"lsst.ts.makecalibrations.butler.{name}")

    async def _call(self, module: str, function: str, *args: Any, **kwargs: Any) -> Any:
        def call() -> Any:
            # Imported in the worker thread: the first import of daf_butler takes about a second,
            # which must not stall the event loop (and the camera traffic) of the script.
            return getattr(self._module(module), function)(self.repo, *args, **kwargs)

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
        return await self._call(
            "certification",
            "find_conflicts",
            calib_collection,
            list(dataset_types),
            begin,
            end,
            physical_filter=physical_filter,
            detectors=None if detectors is None else list(detectors),
        )

    async def claim_certification(
        self, calib_collection: str, products: Sequence[str], begin: str, end: str, owner: str
    ) -> str | None:
        """Claim what this run will certify (`butler.claims.claim`); a token for `release_claim`.

        Raises
        ------
        ClaimRefusedError
            If another live run has claimed an overlapping certification (the message names it).
        """
        try:
            return await self._call("claims", "claim", calib_collection, list(products), begin, end, owner)
        except Exception as e:
            if isinstance(e, self._module("claims").CertificationClaimError):
                raise ClaimRefusedError(str(e)) from e
            raise

    async def release_claim(self, token: str | None) -> None:
        """Drop a claim made by `claim_certification`."""
        await self._call("claims", "release", token)

    async def certify(
        self, run_collection: str, calib_collection: str, dataset_type: str, begin: str, end: str
    ) -> int:
        """Certify the ``dataset_type`` datasets of ``run_collection``; return how many."""
        return await self._call(
            "certification", "certify", run_collection, calib_collection, dataset_type, begin, end
        )

    async def read_verify_stats(self, collection: str, dataset_type: str) -> dict[Any, Any]:
        """Run-level verification statistics (``verifyBiasStats``...) of a verify job."""
        return await self._call("readers", "read_verify_stats", collection, dataset_type)

    async def read_verify_exposure_stats(self, collection: str, dataset_type: str) -> dict[int, Any]:
        """Exposure-level verification statistics (``verifyFlatExpStats``...) keyed by exposure id."""
        return await self._call("readers", "read_verify_exposure_stats", collection, dataset_type)

    async def collections_have_dataset(self, collections: str, dataset_type: str) -> bool:
        """True if one of the comma-separated ``collections`` holds a ``dataset_type``."""
        return await self._call("readers", "collections_have_dataset", collections, dataset_type)

    async def read_ptc_bad_amps(self, collection: str) -> dict[int, dict[str, str]]:
        """Bad amps of the PTCs of a job, ``{detector: {amp: reason}}``."""
        return await self._call("readers", "read_ptc_bad_amps", collection)

    async def read_pair_gains(self, collection: str) -> list[Any]:
        """Gains per flat pair, detector and amplifier found in a PTC or gain job's collection."""
        return await self._call("readers", "read_pair_gains", collection)

    async def repository_problem(self) -> str | None:
        """Why the repository cannot be used by a run (missing, a file, read-only...), or `None`."""
        return await self._call("checks", "repository_problem")

    async def collection_types(self, names: Sequence[str]) -> dict[str, str | None]:
        """Type name (``RUN``, ``CALIBRATION``...) of each collection; `None` if it does not exist."""
        return await self._call("checks", "collection_types", list(names))

    async def exposure_observation_types(self, exposure_ids: Sequence[int]) -> dict[int, str]:
        """Observation type (``bias``, ``dark``, ``flat``...) of each exposure found in the repo."""
        return await self._call("readers", "exposure_observation_types", list(exposure_ids))

    async def raw_detectors(self, exposure_ids: Sequence[int]) -> dict[int, list[int]]:
        """Detectors with a ``raw`` of each exposure registered in the repo (`butler.readers`)."""
        return await self._call("readers", "raw_detectors", list(exposure_ids))
