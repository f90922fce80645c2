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

"""The statuses of the run report's records, one `enum.StrEnum` per record type.

Each member is its lower-case string (so it compares equal to, and is written in JSON as, the plain
string) and carries its meaning as ``description``; the run report reference page lists them from
here.

May import: the standard library.
"""

from __future__ import annotations

__all__ = ["AcquisitionStatus", "JobStatus", "VerificationStatus", "CertificationStatus"]

import enum
from typing import Self


class _DescribedStatus(enum.StrEnum):
    """A status whose members are ``NAME = "value", "what it means"``."""

    description: str

    def __new__(cls, value: str, description: str = "") -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member


class AcquisitionStatus(_DescribedStatus):
    """How the acquisition of one image type went (`calib.report.AcquisitionRecord.status`)."""

    PENDING = "pending", "not started yet"
    ACQUIRING = "acquiring", "images are being taken"
    TAKEN = "taken", "every image taken, not yet all announced by the OODS"
    COMPLETE = "complete", "every kept image taken and announced by the OODS"
    INCOMPLETE = "incomplete", "stopped or failed before the last image"
    MISSING_IMAGES = (
        "missing_images",
        ("some kept images never announced by the OODS (listed in missing_exposure_ids)"),
    )
    NOT_TAKEN = "not_taken", "never started (the run ended before)"
    RECOVERED = "recovered", "no image taken: the exposures of an earlier run are reused"


class JobStatus(_DescribedStatus):
    """The state of one OCPS job (`calib.report.JobRecord.status`)."""

    RUNNING = "running", "sent, no result yet"
    SUCCEEDED = "succeeded", "job_result with exit code 0"
    FAILED = "failed", "job_result with a non-zero exit code"
    ABORTED = "aborted", "aborted (the run was stopped, or the OCPS reported exit code 255)"
    TIMEOUT = "timeout", "no job_result within pipeline_job_timeout"
    REJECTED = "rejected", "the OCPS refused execute: there is no job, hence no job id"
    UNACKNOWLEDGED = (
        "unacknowledged",
        (
            "stopped while execute was in flight and no in-progress ack (hence no job id) came within the "
            "bounded wait"
        ),
    )


class VerificationStatus(_DescribedStatus):
    """The verification of one image type (`calib.report.VerificationRecord.status`)."""

    PENDING = "pending", "not decided yet"
    PASSED = "passed", "the certification rule passed"
    FAILED = "failed", "the certification rule refused certification"
    ERROR = "error", "no statistics could be read"
    ABORTED = "aborted", "the run was stopped before the verification finished"


class CertificationStatus(_DescribedStatus):
    """One certification (`calib.report.CertificationRecord.status`)."""

    PENDING = "pending", "not done yet"
    CERTIFIED = "certified", "certified into calib_collection"
    FAILED = "failed", "certifying failed (the reason says why)"
    NOT_CERTIFIED = "not_certified", "refused: the verification or a product check did not pass"
    SKIPPED = "skipped", "not attempted (an input is missing)"
