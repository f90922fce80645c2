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

"""Certification claims: one run at a time certifies a product into a collection over a range.

The script checks at configure that ``calib_collection`` holds nothing it would certify over an
overlapping range (`certification.find_conflicts`), but it certifies minutes later; two runs
configured at the same time would both pass that check. So, right after the check, a run *claims*
what it will certify: `claim` records (collection, products, validity range, owner) in
``<repo>/certification_claims.json`` under an exclusive ``fcntl`` lock, and refuses, naming the
other run, when a live claim of another run covers the same collection and product over an
overlapping range. `release` drops the claim when the run ends; a claim whose process is gone (a
killed run) is ignored and cleaned up by the next `claim`.

Claims are kept for repositories that are local directories (the simulated observatory, a shared
file system); for any other repository `claim` does nothing (`None`) and the registry's own refusal
of an overlapping certification is the safeguard.

May import: the standard library, astropy and this room's `certification` module.
"""

from __future__ import annotations

__all__ = ["CLAIMS_FILE", "CertificationClaimError", "claim", "release"]

import contextlib
import fcntl
import json
import os
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .certification import make_timespan

CLAIMS_FILE = "certification_claims.json"
"""File of the live claims, at the repository root."""


class CertificationClaimError(RuntimeError):
    """Another live run has claimed a certification this run would make."""


def _local_root(repo: str | os.PathLike[str]) -> Path | None:
    text = os.fspath(repo)
    if "://" in text and not text.startswith("file://"):
        return None
    root = Path(text.removeprefix("file://"))
    return root if root.is_dir() else None


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[list[dict[str, Any]]]:
    with open(root / (CLAIMS_FILE + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            path = root / CLAIMS_FILE
            try:
                claims = list(json.loads(path.read_text()))
            except (FileNotFoundError, ValueError):
                claims = []
            before = list(claims)
            yield claims
            if claims != before:
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(claims, indent=1))
                tmp.replace(path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _alive(entry: dict[str, Any]) -> bool:
    if entry.get("host") != socket.gethostname():
        return True  # cannot tell: assume it still runs
    try:
        os.kill(int(entry["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _overlaps(entry: dict[str, Any], collection: str, products: set[str], begin: str, end: str) -> bool:
    if entry["calib_collection"] != collection or not products & set(entry["products"]):
        return False
    return bool(make_timespan(entry["begin"], entry["end"]).overlaps(make_timespan(begin, end)))


def claim(
    repo: str | os.PathLike[str],
    calib_collection: str,
    products: Iterable[str],
    begin: str,
    end: str,
    owner: str,
) -> str | None:
    """Claim the certification of ``products`` into ``calib_collection`` over ``[begin, end)``.

    Parameters
    ----------
    repo : `str` or `os.PathLike`
        Repository root.
    calib_collection : `str`
        CALIBRATION collection the run certifies into.
    products : `~collections.abc.Iterable` [`str`]
        Dataset types the run certifies.
    begin, end : `str`
        Validity range (TAI dates).
    owner : `str`
        Who claims (shown to a refused run), e.g. ``MakeComCamCalibrations index 12``.

    Returns
    -------
    token : `str` or `None`
        Token to give to `release`; `None` if the repository is not a local directory.

    Raises
    ------
    CertificationClaimError
        If a live claim of another run overlaps; the message names that run.
    """
    root = _local_root(repo)
    if root is None:
        return None
    wanted = set(products)
    with _locked(root) as claims:
        claims[:] = [entry for entry in claims if _alive(entry)]
        for entry in claims:
            if _overlaps(entry, calib_collection, wanted, begin, end):
                shared = ", ".join(sorted(wanted & set(entry["products"])))
                since = time.strftime("%H:%M:%S", time.gmtime(entry["time"]))
                raise CertificationClaimError(
                    f"another run ({entry['owner']}, pid {entry['pid']} on {entry['host']}, since "
                    f"{since} UTC) is about to certify {shared} into {calib_collection} over "
                    f"[{entry['begin']}, {entry['end']}), which overlaps [{begin}, {end})"
                )
        token = uuid.uuid4().hex
        claims.append(
            {
                "token": token,
                "calib_collection": calib_collection,
                "products": sorted(wanted),
                "begin": begin,
                "end": end,
                "owner": owner,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "time": time.time(),
            }
        )
    return token


def release(repo: str | os.PathLike[str], token: str | None) -> None:
    """Drop the claim ``token`` (no error if it is gone or `None`)."""
    root = _local_root(repo)
    if root is None or token is None:
        return
    with _locked(root) as claims:
        claims[:] = [entry for entry in claims if entry.get("token") != token]
