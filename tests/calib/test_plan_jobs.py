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

"""Exposure plan, durations and the exact OCPS job strings."""

import pytest

from lsst.ts.makecalibrations.calib.config import ImageType, parse_config_text
from lsst.ts.makecalibrations.calib.jobs import (
    ISR_LABELS,
    JobBuilder,
    JobKind,
    Placeholder,
    ocps_output_collection,
    translate_isr_label,
)
from lsst.ts.makecalibrations.calib.plan import CalibrationPlan, ProcessingCostModel

ALL = "(0,1,2,3,4,5,6,7,8)"


def plan_of(text: str, **kwargs) -> CalibrationPlan:
    return CalibrationPlan.from_config(parse_config_text(text), **kwargs)


def test_daily_default_sequence_and_duration() -> None:
    plan = plan_of("")
    assert [a.image_type for a in plan.acquisitions] == [ImageType.BIAS, ImageType.DARK, ImageType.FLAT]
    for acq in plan.acquisitions:
        assert len(acq.exposures) == 21
        assert acq.exposures[0].discard and not any(e.discard for e in acq.exposures[1:])
        assert [e.number for e in acq.exposures] == list(range(1, 22))
    assert {e.exp_time for e in plan.acquisition(ImageType.BIAS).exposures} == {0.0}
    assert {e.exp_time for e in plan.acquisition(ImageType.FLAT).exposures} == {5.0}
    # 21 biases of (0 + 2) s, 21 darks and 21 flats of (5 + 2) s.
    assert plan.acquisition_duration() == pytest.approx(21 * 2 + 2 * 21 * 7)
    assert plan.exposure_readout_sum() == plan.acquisition_duration()
    assert plan.n_images == 63
    assert plan.estimated_duration() > plan.acquisition_duration()
    assert len(plan.flat_pairs) == 10
    assert [p.product for p in plan.extras] == ["gain"]
    assert all(p.verify == "external" and not p.combine and not p.certify for p in plan.processing)
    assert plan.certified_products == ()


def test_list_exposure_times_and_discards() -> None:
    plan = plan_of("n_dark: 3\nn_discard_dark: 2\nexp_times_dark: [5, 10, 15]\nwait_between_exposures: 1\n")
    darks = plan.acquisition(ImageType.DARK)
    assert [(e.exp_time, e.discard) for e in darks.exposures] == [
        (5.0, True),
        (5.0, True),
        (5.0, False),
        (10.0, False),
        (15.0, False),
    ]
    assert darks.n_discard == 2 and darks.n_kept == 3
    assert darks.duration(2.0, 1.0) == pytest.approx(5 * 3 + 10 + 15 + 5 * 2 + 4 * 1)


def test_wait_between_exposures_and_read_out_time() -> None:
    plan = plan_of(
        "script_mode: BIAS\nn_bias: 4\nn_discard_bias: 0\nwait_between_exposures: 3\n", read_out_time=1.5
    )
    assert plan.acquisition_duration() == pytest.approx(4 * 1.5 + 3 * 3)
    assert plan.exposure_readout_sum() == pytest.approx(4 * 1.5)


def test_processing_tail_uses_cost_model() -> None:
    model = ProcessingCostModel(job_overhead=10, per_image_detector=1, certification=0, wrap_up=0)
    plan = plan_of("script_mode: BIAS\nn_bias: 4\ndetectors: [0, 1]\nn_processes: 1\n", cost_model=model)
    # One external verify job of 4 images x 2 detectors on 1 process.
    assert plan.processing_tail() == pytest.approx(10 + 4 * 2)


def test_generate_dependencies() -> None:
    plan = plan_of(
        "generate_calibrations: true\ndo_defects: true\ndo_ptc: true\n"
        "n_flat: 4\nexp_times_flat: [1, 1, 2, 2]\n"
    )
    waits = {p.image_type.key: p.waits_for for p in plan.processing}
    assert waits == {"bias": (), "dark": ("bias",), "flat": ("bias", "dark")}
    extras = {e.product: e for e in plan.extras}
    assert set(extras) == {"defects", "ptc"}
    # Defects and PTC go through ISR with bias and dark only (flats are not flat-fielded).
    assert extras["defects"].waits_for == ("bias", "dark")
    assert extras["ptc"].waits_for == ("bias", "dark", "defects")
    assert extras["defects"].inputs == (ImageType.DARK, ImageType.FLAT)
    assert plan.certified_products == ("bias", "dark", "flat", "defects", "ptc")
    assert all(p.verify == "internal" for p in plan.processing)
    # 3 combines, 3 verifications, defects, PTC and the gain check after the PTC.
    assert plan.n_jobs == 9 == len(plan.planned_jobs())


def test_resumed_plan_skips_certified_products() -> None:
    config = parse_config_text(
        "script_mode: BIAS_DARK\ngenerate_calibrations: true\nexposure_ids: {bias: [1, 2], dark: [3, 4]}\n"
    )
    plan = CalibrationPlan.from_config(config, already_certified=["bias"])
    assert plan.n_images == 0 and plan.acquisition_duration() == 0
    assert plan.type_processing(ImageType.BIAS).already_certified
    assert plan.type_processing(ImageType.DARK).waits_for == ()
    assert plan.certified_products == ("dark",)
    jobs = plan.planned_jobs()
    assert [j.name for j in jobs] == ["DARK combine", "DARK verify"]
    assert jobs[0].exposure_ids == (3, 4)
    assert "reuse 2 existing biases [1, 2]" in plan.describe()


def test_planned_jobs_with_placeholders() -> None:
    plan = plan_of("")
    jobs = plan.planned_jobs()
    assert [j.name for j in jobs] == ["BIAS verify", "DARK verify", "FLAT verify", "GAIN", "GAIN verify"]
    # The gain check reads the gain job's pairs and the PTC of input_collections_ptc.
    assert jobs[-1].config == "-j 8 -i u/ocps/<GAIN job id>,LSSTComCam/calib --register-dataset-types "
    assert jobs[0].data_query == (
        f"instrument='LSSTComCam' AND detector IN {ALL} AND exposure IN (<20 BIAS exposure ids>)"
    )
    text = plan.describe()
    assert "FLAT: 1 discarded + 20 kept flats of 5 s (147 s)" in text
    assert "Certifies nothing." in text
    assert "Estimated duration:" in text


# --- job strings -----------------------------------------------------------------------------------


def test_combine_strings_external() -> None:
    builder = JobBuilder(parse_config_text("n_processes: 4\ndetectors: [0, 1, 2]\n"))
    spec = builder.combine(ImageType.BIAS, [2024010100001, 2024010100002])
    assert spec.kind is JobKind.COMBINE and spec.name == "BIAS combine"
    assert spec.execute_fields() == {
        "pipeline": "${CP_PIPE_DIR}/pipelines/LSSTComCam/cpBias.yaml",
        "version": "",
        "config": "-j 4 -i LSSTComCam/calib --register-dataset-types -c cpBiasIsr:doDefect=False",
        "data_query": (
            "instrument='LSSTComCam' AND detector IN (0,1,2) AND exposure IN (2024010100001, 2024010100002)"
        ),
    }
    single = builder.combine(ImageType.DARK, [2024010100003])
    assert single.data_query.endswith("exposure IN (2024010100003)")
    assert single.pipeline == "${CP_PIPE_DIR}/pipelines/LSSTComCam/cpDark.yaml"
    assert single.config == "-j 4 -i LSSTComCam/calib --register-dataset-types -c cpDarkIsr:doDefect=False"


def test_generate_prepends_calib_collection() -> None:
    builder = JobBuilder(
        parse_config_text(
            "generate_calibrations: true\ncalib_collection: u/me/cc\ninput_collections_flat: a,b\n"
            "config_options_flat: '-c cpFlatIsr:doDark=False'\n"
        )
    )
    assert builder.combine(ImageType.BIAS, [1]).config == (
        "-j 8 -i LSSTComCam/calib --register-dataset-types -c cpBiasIsr:doDefect=False"
    )
    assert builder.combine(ImageType.DARK, [1]).config == (
        "-j 8 -i u/me/cc,LSSTComCam/calib --register-dataset-types -c cpDarkIsr:doDefect=False"
    )
    assert builder.combine(ImageType.FLAT, [1]).config == (
        "-j 8 -i u/me/cc,a,b --register-dataset-types -c cpFlatIsr:doDark=False"
    )
    assert builder.defects([1, 2]).config == (
        "-j 8 -i u/me/cc,LSSTComCam/calib --register-dataset-types "
        "-c cpDefectsDarkIsr:doDefect=False -c cpDefectsFlatIsr:doDefect=False"
    )
    assert builder.ptc([1, 2]).config == (
        "-j 8 -i u/me/cc,LSSTComCam/calib --register-dataset-types "
        "-c cpPtcIsr:doCrosstalk=False -c cpPtcExtract:doCrosstalk=False"
    )


def test_verify_internal_and_external() -> None:
    builder = JobBuilder(parse_config_text("input_collections_verify_flat: u/x,LSSTComCam/calib\n"))
    internal = builder.verify(ImageType.FLAT, [5, 6], "abc123")
    assert internal.pipeline == "${CP_VERIFY_DIR}/pipelines/LSSTComCam/verifyFlat.yaml"
    assert internal.config == "-j 8 -i u/ocps/abc123,u/x,LSSTComCam/calib --register-dataset-types "
    assert internal.data_query == f"instrument='LSSTComCam' AND detector IN {ALL} AND exposure IN (5, 6)"
    external = builder.verify(ImageType.BIAS, [5], None)
    assert external.pipeline == "${CP_VERIFY_DIR}/pipelines/LSSTComCam/verifyBias.yaml"
    assert external.config == "-j 8 -i LSSTComCam/calib --register-dataset-types "
    assert external.name == "BIAS verify"


def test_defects_ptc_gain_strings() -> None:
    builder = JobBuilder(parse_config_text("detectors: [4]\nn_processes: 2\n"))
    defects = builder.defects([1, 2, 3])
    assert defects.pipeline == "${CP_PIPE_DIR}/pipelines/LSSTComCam/cpDefects.yaml"
    assert defects.data_query == "instrument='LSSTComCam' AND detector IN (4) AND exposure IN (1, 2, 3)"
    ptc = builder.ptc([7, 8])
    assert ptc.pipeline == "${CP_PIPE_DIR}/pipelines/LSSTComCam/cpPtc.yaml"
    assert ptc.config == (
        "-j 2 -i LSSTComCam/calib --register-dataset-types "
        "-c cpPtcIsr:doCrosstalk=False -c cpPtcExtract:doCrosstalk=False"
    )
    gain = builder.gain([7, 8])
    assert gain.pipeline == "${CP_PIPE_DIR}/pipelines/LSSTComCam/cpPtc.yaml#cpPtcGainFromFlatPairs"
    # The same options, sent to the subset's one ISR task (cpPtcExtract, no cpPtcIsr).
    assert (
        gain.config == "-j 2 -i LSSTComCam/calib --register-dataset-types -c cpPtcExtract:doCrosstalk=False"
    )
    assert gain.kind is JobKind.GAIN and gain.name == "GAIN"
    assert builder.extra("defects", [1]).kind is JobKind.DEFECTS
    with pytest.raises(ValueError):
        builder.data_query([])


def test_placeholders() -> None:
    builder = JobBuilder(parse_config_text(""))
    spec = builder.verify(ImageType.DARK, Placeholder("DARK ids"), Placeholder("DARK combine job id"))
    assert spec.config.startswith("-j 8 -i u/ocps/<DARK combine job id>,LSSTComCam/calib")
    assert spec.data_query.endswith("exposure IN (<DARK ids>)")
    assert spec.exposure_ids == ()
    assert ocps_output_collection("abc") == "u/ocps/abc"


@pytest.mark.parametrize(
    "options, pipeline_file, expected",
    [
        ("-c isr:doDefect=False", "cpBias.yaml", "-c cpBiasIsr:doDefect=False"),
        (
            "-c isr:doDefect=False -c isr:doCrosstalk=False",
            "cpPtc.yaml#cpPtcGainFromFlatPairs",
            "-c cpPtcExtract:doDefect=False -c cpPtcExtract:doCrosstalk=False",
        ),
        (
            "-c cpPtcIsr:doDefect=False -c cpPtcExtract:nSigmaClipPtc=4",
            "cpPtc.yaml",
            "-c cpPtcIsr:doDefect=False -c cpPtcExtract:doDefect=False -c cpPtcExtract:nSigmaClipPtc=4",
        ),
        (
            "-c cpPtcIsr:doDefect=False -c isr:doCrosstalk=False",
            "cpPtc.yaml#cpPtcGainFromFlatPairs",
            "-c cpPtcExtract:doDefect=False -c cpPtcExtract:doCrosstalk=False",
        ),
        ("-c cpPtcIsr:doDefect=False", "cpBias.yaml", "-c cpPtcIsr:doDefect=False"),
        (
            "-c isr:doDefect=False -c cpMergeDefects:edgesAsDefects=True",
            "cpDefects.yaml",
            "-c cpDefectsDarkIsr:doDefect=False -c cpDefectsFlatIsr:doDefect=False "
            "-c cpMergeDefects:edgesAsDefects=True",
        ),
        ("-c isr:doDefect=False", "verifyFlat.yaml", "-c verifyFlatIsr:doDefect=False"),
        ("-c cpDarkIsr:doDefect=False", "cpDark.yaml", "-c cpDarkIsr:doDefect=False"),
        ("", "cpFlat.yaml", ""),
        (
            '-c \'cpBiasCombine:mask=["SAT", "INTRP"]\' -c isr:doBias=False',
            "cpBias.yaml",
            '-c \'cpBiasCombine:mask=["SAT", "INTRP"]\' -c cpBiasIsr:doBias=False',
        ),
    ],
)
def test_bare_isr_label_is_translated(options: str, pipeline_file: str, expected: str) -> None:
    assert translate_isr_label(options, pipeline_file) == expected


def test_isr_labels_are_those_of_the_pipelines() -> None:
    """`ISR_LABELS` lists exactly the tasks that run the ISR (`IsrTask` subclasses) of each pipeline the
    jobs call."""
    from lsst.pipe.base import Pipeline

    from lsst.ts.makecalibrations.pipelines.locations import expand_pipeline_uri
    from lsst.ts.makecalibrations.pipelines.tasks.isr_task import IsrTask

    for pipeline_file, labels in ISR_LABELS.items():
        root = "${CP_VERIFY_DIR}" if pipeline_file.startswith("verify") else "${CP_PIPE_DIR}"
        uri = expand_pipeline_uri(f"{root}/pipelines/LSSTComCam/{pipeline_file}")
        graph = Pipeline.from_uri(uri).to_graph()
        isr = tuple(label for label, node in graph.tasks.items() if issubclass(node.task_class, IsrTask))
        assert sorted(isr) == sorted(labels), pipeline_file


def test_plan_takes_the_discarded_images_with_their_own_times() -> None:
    config = parse_config_text(
        "script_mode: DARK\nn_dark: 2\nn_discard_dark: 1\nexp_times_dark: [3, 10, 20]\n"
    )
    (dark,) = CalibrationPlan.from_config(config).acquisitions
    assert [(e.exp_time, e.discard) for e in dark.exposures] == [(3.0, True), (10.0, False), (20.0, False)]


def test_internal_verify_uses_the_calibrations_the_combine_used() -> None:
    # A dark combined with this run's bias (calib_collection) is verified with that bias, not with
    # the reference bias of input_collections_verify_dark: their difference would add the combined
    # bias's noise to every verified dark (NOISE +4 % with 12 frames).
    builder = JobBuilder(parse_config_text("generate_calibrations: true\ncalib_collection: u/me/cc\n"))
    dark = builder.verify(ImageType.DARK, [5], "abc123")
    assert dark.config == "-j 8 -i u/ocps/abc123,u/me/cc,LSSTComCam/calib --register-dataset-types "
    flat = builder.verify(ImageType.FLAT, [5], "abc123")
    assert flat.config.startswith("-j 8 -i u/ocps/abc123,u/me/cc,LSSTComCam/calib ")
    # The bias combine reads no calibration of this run; its verification is unchanged.
    bias = builder.verify(ImageType.BIAS, [5], "abc123")
    assert bias.config == "-j 8 -i u/ocps/abc123,LSSTComCam/calib --register-dataset-types "


def test_a_ptc_job_is_followed_by_the_gain_check_against_its_own_ptc() -> None:
    plan = plan_of("do_ptc: true\ndo_gain_from_flat_pairs: false\n")
    names = [j.name for j in plan.planned_jobs()]
    assert names[-2:] == ["PTC", "GAIN verify"]
    check = plan.planned_jobs()[-1]
    assert check.config == "-j 8 -i u/ocps/<PTC job id> --register-dataset-types "


def test_verify_gain_strings() -> None:
    builder = JobBuilder(parse_config_text("detectors: [4]\nn_processes: 2\n"))
    own = builder.verify_gain([1, 2], "ptcjob", None)
    assert own.name == "GAIN verify"
    assert own.pipeline == "${CP_VERIFY_DIR}/pipelines/LSSTComCam/verifyGainFromFlatPairs.yaml"
    assert own.config == "-j 2 -i u/ocps/ptcjob --register-dataset-types "
    reference = builder.verify_gain([1, 2], "gainjob", "LSSTComCam/calib")
    assert reference.config == "-j 2 -i u/ocps/gainjob,LSSTComCam/calib --register-dataset-types "
    assert reference.data_query == "instrument='LSSTComCam' AND detector IN (4) AND exposure IN (1, 2)"


def test_jobs_carry_their_input_collections_as_data() -> None:
    """The ``-i`` of each job's config string is its ``input_collections``, in order."""
    config = parse_config_text(
        "script_mode: BIAS_DARK_FLAT\ngenerate_calibrations: true\ndo_defects: true\ndo_ptc: true\n"
        "n_flat: 4\nexp_times_flat: [1, 1, 2, 2]\n"
    )
    jobs = CalibrationPlan.from_config(config).planned_jobs()
    assert {j.kind.value for j in jobs} >= {"combine", "verify", "defects", "ptc"}
    for job in jobs:
        inputs = job.config.split(" -i ", 1)[1].split(" --register-dataset-types", 1)[0]
        assert tuple(inputs.split(",")) == job.input_collections, job.name
    verify = next(j for j in jobs if j.name == "DARK verify")
    assert verify.input_collections[0].startswith("u/ocps/")


def test_physical_filter_of_each_camera() -> None:
    from lsst.ts.makecalibrations.calib.instrument import COMCAM, LATISS, LSSTCAM

    assert COMCAM.physical_filter_of({"filter": "r_03"}) == "r_03"
    assert LSSTCAM.physical_filter_of({"filter": "g_6", "ignore": ["MTDome"]}) == "g_6"
    latiss_setup = {"filter": "SDSSr_65mm", "grating": "holo4_003"}
    assert LATISS.physical_filter_of(latiss_setup) == "SDSSr_65mm~holo4_003"
    # Not known by name: a grating left unchanged or given by slot, no filter.
    assert LATISS.physical_filter_of({"filter": "SDSSr_65mm", "grating": None}) is None
    assert LATISS.physical_filter_of({"filter": "SDSSr_65mm", "grating": 2}) is None
    assert COMCAM.physical_filter_of({"filter": None}) is None
    with pytest.raises(ValueError, match="needs a grating"):
        LATISS.physical_filter("SDSSr_65mm")
