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

"""Run report model: JSON round trip, summary, gain table and recovery."""

import json
import math

import pytest

from lsst.ts.makecalibrations.calib.config import ImageType, parse_config_text
from lsst.ts.makecalibrations.calib.recovery import resume_config
from lsst.ts.makecalibrations.calib.report import (
    AcquisitionRecord,
    CertificationRecord,
    ExposureRecord,
    GainRecord,
    JobRecord,
    RunReport,
    format_gain_table,
)
from lsst.ts.makecalibrations.calib.statuses import CertificationStatus, JobStatus


def failed_run() -> RunReport:
    config = parse_config_text(
        "script_mode: BIAS_DARK\nn_bias: 2\nn_dark: 2\ngenerate_calibrations: true\ncalib_collection: u/c\n"
    )
    report = RunReport(script="MakeComCamCalibrations", config=config.to_dict(), start_tai=1.7e9)
    report.acquisitions = [
        AcquisitionRecord("BIAS", 3, 2, status="complete"),
        AcquisitionRecord("DARK", 3, 2, status="missing_images", missing_exposure_ids=[13]),
    ]
    report.exposures = [
        ExposureRecord(10, "BIAS", 0.0, discarded=True),
        ExposureRecord(11, "BIAS", 0.0, in_oods=True),
        ExposureRecord(12, "BIAS", 0.0, in_oods=True),
        ExposureRecord(13, "DARK", 5.0),
    ]
    report.jobs = [
        JobRecord(
            "BIAS combine",
            "combine",
            "bias",
            "p",
            "c",
            "q",
            job_id="j1",
            status="succeeded",
            start_tai=1.7e9,
            end_tai=1.7e9 + 12,
        )
    ]
    report.certifications = [
        CertificationRecord("bias", "u/ocps/j1", "u/c", "1950-01-01", "2050-01-01", "certified", 9)
    ]
    report.add_failure("DARK ingestion", "1 of 2 darks not announced")
    report.add_failure("DARK combine", "not started")
    report.final_state = "FAILED"
    report.end_tai = 1.7e9 + 60
    return report


def test_json_round_trip() -> None:
    report = failed_run()
    report.gains = [GainRecord([20, 21], 0, "C00", 1.5, 6.0)]
    data = json.loads(report.to_json())
    assert data["format_version"] == 1
    assert data["jobs"][0]["duration"] == 12
    assert data["duration"] == 60
    assert data["start_iso"].startswith("2023-11-14T22:1")
    again = RunReport.from_dict(data)
    assert again.to_dict() == report.to_dict()
    assert isinstance(again.jobs[0], JobRecord) and again.gains[0].pair == [20, 21]
    # Statuses are their enums, read back as such; an unknown status is refused.
    assert again.jobs[0].status is JobStatus.SUCCEEDED
    assert again.certifications[0].status is CertificationStatus.CERTIFIED
    assert data["jobs"][0]["status"] == "succeeded"
    with pytest.raises(ValueError, match="'done' is not a valid JobStatus"):
        JobRecord("BIAS combine", "combine", "bias", "p", "c", "q", status="done")


def test_first_failure_is_the_failure_step() -> None:
    report = failed_run()
    assert report.failure_step == "DARK ingestion"
    assert report.failure_reason == "DARK ingestion: 1 of 2 darks not announced"
    assert len(report.failures) == 2
    assert report.failures[1].describe() == "DARK combine: not started"


def test_summary_text() -> None:
    text = failed_run().summary_text()
    assert text.splitlines()[0] == "MakeComCamCalibrations FAILED after 60 s"
    assert "BIAS: complete, 2 kept + 1 discarded [11..12]" in text
    assert "missing in OODS: [13]" in text
    assert "certified 9 bias into u/c [1950-01-01, 2050-01-01) from u/ocps/j1" in text
    assert "FAILED DARK ingestion" in text


def test_reusable_exposures_and_certified_products() -> None:
    report = failed_run()
    assert report.reusable_exposures() == {"bias": [11, 12]}
    assert report.certified_products() == {"bias"}


def test_resume_config(tmp_path) -> None:
    path = tmp_path / "report.json"
    path.write_text(failed_run().to_json())
    loaded = RunReport.load(path)
    config = parse_config_text(
        f"script_mode: BIAS_DARK\nn_bias: 2\nn_dark: 2\ngenerate_calibrations: true\n"
        f"calib_collection: 'u/{{timestamp}}'\nresume_from_report: {path}\n"
    )
    new, info = resume_config(config, loaded)
    assert new.exposure_ids == {ImageType.BIAS: (11, 12)}
    assert new.calib_collection == "u/c"
    assert info.already_certified == {"bias"}
    assert "reusing 2 biases" in info.describe()
    other = parse_config_text(
        f"script_mode: BIAS_DARK\ncalib_collection: other\nresume_from_report: {path}\n"
    )
    new, info = resume_config(other, loaded)
    assert info.already_certified == frozenset() and new.calib_collection == "other"


def test_gain_table() -> None:
    gains = [
        GainRecord([1, 2], d, a, 1.0 + d + i / 100, 5.0) for d in (0, 1) for i, a in enumerate(["C10", "C00"])
    ]
    lines = format_gain_table(gains).splitlines()
    assert lines[0].split() == ["pair", "det", "C00", "C10"]
    assert lines[1].split() == ["1-2", "0", "1.010", "1.000"]
    assert lines[2].split() == ["1-2", "1", "2.010", "2.000"]
    assert format_gain_table([]) == ""
    assert math.isclose(gains[0].gain, 1.0)


def stopped_before_announcement() -> RunReport:
    """A run stopped (or killed) with every image taken but none announced by the OODS yet."""
    config = parse_config_text("script_mode: BIAS_DARK\nn_bias: 2\nn_dark: 2\ndetectors: [0, 1]\n")
    report = RunReport(config=config.to_dict(), start_tai=1.7e9)
    report.acquisitions = [
        AcquisitionRecord("BIAS", 3, 2, status="incomplete"),
        AcquisitionRecord("DARK", 3, 2, status="acquiring"),
    ]
    report.exposures = [
        ExposureRecord(10, "BIAS", 0.0, discarded=True),
        ExposureRecord(11, "BIAS", 0.0),
        ExposureRecord(12, "BIAS", 0.0),
        ExposureRecord(20, "DARK", 5.0, discarded=True),
        ExposureRecord(21, "DARK", 5.0),
        ExposureRecord(22, "DARK", 5.0),
    ]
    return report


def test_resume_trusts_the_registry_not_the_report_flags() -> None:
    report = stopped_before_announcement()
    config = parse_config_text("script_mode: BIAS_DARK\nn_bias: 2\nn_dark: 2\ndetectors: [0, 1]\n")
    # The report alone reuses nothing: no type reached "complete".
    assert resume_config(config, report)[0].exposure_ids == {}
    # The registry holds every raw of the biases, and dark 22 only for detector 0 (a partial exposure).
    in_repo = {10: [0, 1], 11: [0, 1], 12: [0, 1], 20: [0, 1], 21: [0, 1], 22: [0]}
    new, info = resume_config(config, report, in_repo)
    assert new.exposure_ids == {ImageType.BIAS: (11, 12)}
    assert info.partial == {22: (0,)}
    assert "not reused, raws for only some detectors: 22 (detectors [0])" in info.describe()
    # With every raw there, both types are reused; a one-detector resume needs detector 0 only.
    in_repo[22] = [0, 1]
    assert resume_config(config, report, in_repo)[0].exposure_ids == {
        ImageType.BIAS: (11, 12),
        ImageType.DARK: (21, 22),
    }
    one = parse_config_text("script_mode: BIAS_DARK\nn_bias: 2\nn_dark: 2\ndetectors: [0]\n")
    assert resume_config(one, report, {**in_repo, 22: [0]})[1].partial == {}
    # A report that says complete is not believed when the raws are not in the repository.
    complete = failed_run()
    assert resume_config(complete_config(), complete, {10: [], 11: list(range(9))})[0].exposure_ids == {}


def complete_config():
    return parse_config_text("script_mode: BIAS_DARK\nn_bias: 2\nn_dark: 2\n")
