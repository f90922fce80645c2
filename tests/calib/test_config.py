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

"""Configuration schema and validation: defaults, seed examples, every bad-input case."""

import dataclasses
import textwrap

import jsonschema
import pytest

from lsst.ts.makecalibrations.calib.config import (
    COLLECTION_TEMPLATE_FIELDS,
    ConfigError,
    ImageType,
    find_flat_pairs,
    load_schema,
    parse_config_text,
    resolve_templates,
    schema_defaults,
    validate_config,
)
from lsst.ts.makecalibrations.calib.plan import CalibrationPlan

# Every parameter of the seed procedure with the seed's default.
SEED_DEFAULTS = {
    "script_mode": "BIAS_DARK_FLAT",
    "n_bias": 20,
    "n_discard_bias": 1,
    "n_dark": 20,
    "n_discard_dark": 1,
    "exp_times_dark": 5,
    "n_flat": 20,
    "n_discard_flat": 1,
    "exp_times_flat": 5,
    "detectors": [],
    "do_verify": True,
    "generate_calibrations": False,
    "config_options_bias": "-c isr:doDefect=False",
    "config_options_dark": "-c isr:doDefect=False",
    "config_options_flat": "-c isr:doDefect=False",
    "do_defects": False,
    "config_options_defects": "-c isr:doDefect=False",
    "do_ptc": False,
    "config_options_ptc": "-c isr:doCrosstalk=False",
    "do_gain_from_flat_pairs": True,
    "input_collections_bias": "LSSTComCam/calib",
    "input_collections_verify_bias": "LSSTComCam/calib",
    "input_collections_dark": "LSSTComCam/calib",
    "input_collections_verify_dark": "LSSTComCam/calib",
    "input_collections_flat": "LSSTComCam/calib",
    "input_collections_verify_flat": "LSSTComCam/calib",
    "input_collections_defects": "LSSTComCam/calib",
    "input_collections_ptc": "LSSTComCam/calib",
    "calib_collection": "LSSTComCam/calib/daily",
    "repo": "/repo/LSSTComCam",
    "n_processes": 8,
    "certify_calib_begin_date": "1950-01-01",
    "certify_calib_end_date": "2050-01-01",
    "oods_timeout": 120,
    "filter": None,
}


def problems_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as excinfo:
        parse_config_text(textwrap.dedent(text))
    return excinfo.value


def refused(text: str, keys: list[str], *fragments: str) -> ConfigError:
    """Check that ``text`` is refused for exactly ``keys``, the message holding every fragment."""
    error = problems_of(text)
    assert error.keys == keys
    for fragment in fragments:
        assert fragment in str(error)
    return error


def test_schema_is_draft7_and_closed() -> None:
    schema = load_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    for key, prop in schema["properties"].items():
        assert prop.get("description"), f"{key} has no description"
        assert "default" in prop, f"{key} has no default"


def test_seed_defaults() -> None:
    defaults = schema_defaults()
    for key, value in SEED_DEFAULTS.items():
        assert defaults[key] == value, key
    extra = set(defaults) - set(SEED_DEFAULTS)
    assert {
        "program",
        "reason",
        "note",
        "wait_between_exposures",
        "pipeline_job_timeout",
        "report_dir",
    } <= extra
    assert {f"number_verification_tests_threshold_{t}" for t in ("bias", "dark", "flat")} <= extra
    assert {"exposure_ids", "resume_from_report"} <= extra
    assert defaults["pipeline_job_timeout"] != defaults["oods_timeout"]


def test_empty_config_is_all_defaults() -> None:
    config = parse_config_text("")
    for key, value in SEED_DEFAULTS.items():
        got = getattr(config, key)
        assert (list(got) if isinstance(got, tuple) else got) == value, key
    assert config.explicit_keys == frozenset()
    assert config.image_types == (ImageType.BIAS, ImageType.DARK, ImageType.FLAT)
    assert config.detector_ids == tuple(range(9))
    assert config.exp_times(ImageType.DARK) == (5.0,) * 20
    assert config.exp_times(ImageType.BIAS) == (0.0,) * 20
    assert len(config.flat_pairs) == 10
    assert config.run_gain and not config.run_ptc and not config.run_defects
    assert CalibrationPlan.from_config(config).certified_products == ()


def test_config_is_frozen_and_round_trips() -> None:
    config = parse_config_text("n_bias: 3\nexp_times_dark: [1, 2, 3, 4]\nn_dark: 4\n")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.n_bias = 4  # type: ignore[misc]
    again = validate_config(config.to_dict())
    assert again.to_dict() == config.to_dict()
    assert config.explicit_keys == {"n_bias", "exp_times_dark", "n_dark"}


def test_metadata_key_is_ignored_and_dates_may_be_unquoted() -> None:
    config = parse_config_text(
        "metadata: {anything: 1}\ncertify_calib_begin_date: 2022-11-04\ncertify_calib_end_date: 2022-11-05\n"
    )
    assert config.certify_calib_begin_date == "2022-11-04"
    assert config.certify_calib_end_date == "2022-11-05"


# --- the seed's own examples ------------------------------------------------------------------


def test_seed_example_exp_times_flats() -> None:
    error = problems_of(
        """
        exp_times_dark: 20
        exp_times_flats: 30
        """
    )
    assert error.keys == ["exp_times_flats"]
    assert "did you mean exp_times_flat?" in str(error)
    assert error.problems[0].line == 3


def test_seed_example_number_and_times_is_valid() -> None:
    config = parse_config_text(
        "n_bias: 30\nn_dark: 5\nexp_times_dark: [5, 10, 15, 20, 25]\nn_flat: 10\n"
        "exp_times_flat: [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]\n"
    )
    assert config.exp_times(ImageType.FLAT)[-1] == 50.0
    assert not config.run_gain
    assert any("does not apply" in note for note in config.notes)


def test_seed_example_internal_verification() -> None:
    error = problems_of(
        """
        generate_calibrations: True
        calibration_collection: LSSTComCam/calib/daily/calib.2022NOV04.1
        certify_calib_begin_date: "2022-11-04"
        certify_calib_begin_date: "2022-11-05"
        """
    )
    by_key = {p.key: p for p in error.problems}
    assert set(by_key) == {"calibration_collection", "certify_calib_begin_date"}
    assert "did you mean calib_collection?" in by_key["calibration_collection"].message
    assert "duplicate key" in by_key["certify_calib_begin_date"].message
    assert by_key["certify_calib_begin_date"].line == 5
    assert "line 4" in by_key["certify_calib_begin_date"].message


def test_seed_example_ptc_key_equals_value() -> None:
    error = problems_of(
        """
        script_mode: BIAS_DARK_FLAT
        n_flat: 14
        exp_times_flat: [5, 5, 10, 10, 15, 15, 20, 20, 25, 25, 30, 30, 35, 35]
        filter: ${FILTER_NAME_OR_ID}
        generate_calibrations=True
        calib_collection: "LSSTComCam/calib/daily/calibs.2022NOV04.1"
        do_ptc: True
        """
    )
    assert error.keys == ["generate_calibrations"]
    problem = error.problems[0]
    assert problem.line == 6 and problem.column == 1
    assert "write 'generate_calibrations: true'" in problem.message


def test_seed_example_filter_placeholder() -> None:
    refused("filter: ${FILTER_NAME_OR_ID}\n", ["filter"], "placeholder")


def test_seed_example_external_ptc_is_valid() -> None:
    config = parse_config_text(
        textwrap.dedent(
            """
            n_bias: 6
            n_dark: 6
            exp_times_dark: [5, 5, 5, 10, 15, 20]
            n_flat: 14
            exp_times_flat: [0.1, 0.1, 0.35, 0.35, 0.6, 0.6, 0.8, 0.8, 1.0, 1.0, 1.35, 1.35, 1.6, 1.6]
            do_defects: True
            do_ptc: True
            """
        )
    )
    assert config.run_ptc and config.run_defects and not config.run_gain
    # Without generate_calibrations the combined bias/dark/flat are not made, but the defects and the
    # PTC built are certified into calib_collection, as the ts_externalscripts script does.
    plan = CalibrationPlan.from_config(config)
    assert plan.certified_products == ("defects", "ptc")
    assert (
        f"Certifies defects, ptc into {config.calib_collection} over "
        f"[{config.certify_calib_begin_date}, {config.certify_calib_end_date})"
    ) in plan.describe()


def test_seed_gain_note_pairs() -> None:
    assert find_flat_pairs([0.1, 0.1, 0.35, 0.35, 0.6, 0.6, 1, 1.5, 1.7, 2.1, 2.3]) == [
        (0, 1),
        (2, 3),
        (4, 5),
    ]
    assert find_flat_pairs([1, 2, 2, 2]) == [(1, 2)]
    assert find_flat_pairs([1.2]) == []


# --- each bad-input case -----------------------------------------------------------------------


def test_yaml_syntax_error_has_line_and_column() -> None:
    error = problems_of("n_bias: 3\nexp_times_dark: [1, 2\nn_dark: 2\n")
    problem = error.problems[0]
    assert problem.key is None
    assert problem.message.startswith("YAML syntax error")
    assert (problem.line, problem.column) == (3, 7)


def test_whole_text_key_equals_value() -> None:
    refused("generate_calibrations=True", ["generate_calibrations"], "must be a mapping")


def test_duplicate_keys_nested() -> None:
    error = problems_of("exposure_ids:\n  bias: [1]\n  bias: [2]\n")
    assert error.keys == ["exposure_ids.bias"]


def test_unknown_key_without_suggestion() -> None:
    error = problems_of("completely_unrelated: 1\n")
    assert error.keys == ["completely_unrelated"]
    assert "did you mean" not in str(error)


@pytest.mark.parametrize(
    "text, key, fragment",
    [
        ("n_bias: 'x'\n", "n_bias", "expected an integer"),
        ("n_bias: 0\n", "n_bias", "minimum"),
        ("do_verify: 'True'\n", "do_verify", "expected true or false"),
        ("exp_times_dark: [1, 'a']\nn_dark: 2\n", "exp_times_dark[1]", "expected a number"),
        ("exp_times_flat: 'five'\n", "exp_times_flat", "expected a number > 0 or a list of numbers"),
        ("detectors: 3\n", "detectors", "expected a list of integers"),
        ("detectors: [1, 1]\n", "detectors", "repeated"),
        ("script_mode: BIAS_DARK_FLATS\n", "script_mode", "did you mean BIAS_DARK_FLAT?"),
        ("filter: [r]\n", "filter", "expected a string or an integer or null"),
        ("exposure_ids: {biases: [1]}\nscript_mode: BIAS\n", "exposure_ids.biases", "did you mean bias?"),
    ],
)
def test_wrong_types(text: str, key: str, fragment: str) -> None:
    error = problems_of(text)
    assert key in error.keys
    assert fragment in str(error)


def test_list_length_must_match_kept_images() -> None:
    error = refused(
        "n_dark: 6\nexp_times_dark: [5, 10, 15, 20, 25]\n",
        ["exp_times_dark"],
        "has 5 entries but n_dark is 6",
    )
    # Both accepted lengths are named: per kept image (6) and per image taken (1 discarded + 6).
    assert "give 6 entries, one per kept image" in str(error)
    assert "or 7 entries, one per image taken (n_discard_dark 1 + n_dark 6, the discarded first)" in str(
        error
    )
    # Not checked for a type the mode does not take.
    parse_config_text("script_mode: BIAS\nn_dark: 6\nexp_times_dark: [5, 10]\n")
    # Without discarded images only one length is accepted, and said.
    error = problems_of("n_dark: 2\nn_discard_dark: 0\nexp_times_dark: [5, 10, 15]\n")
    assert "give 2 entries, one per kept image" in str(error) and "per image taken" not in str(error)


def test_list_with_one_entry_per_image_taken() -> None:
    """The anchor's form: n + n_discard entries, the discarded images' first."""
    config = parse_config_text(
        "n_dark: 3\nn_discard_dark: 2\nexp_times_dark: [1, 2, 10, 20, 30]\n"
        "n_flat: 2\nn_discard_flat: 1\nexp_times_flat: [7, 5, 5]\n"
    )
    assert config.exp_times(ImageType.DARK) == (10.0, 20.0, 30.0)
    assert config.discard_exp_times(ImageType.DARK) == (1.0, 2.0)
    assert config.exp_times(ImageType.FLAT) == (5.0, 5.0)
    assert config.discard_exp_times(ImageType.FLAT) == (7.0,)
    # One entry per kept image: the discarded images use the first.
    kept_only = parse_config_text("n_dark: 3\nn_discard_dark: 2\nexp_times_dark: [10, 20, 30]\n")
    assert kept_only.exp_times(ImageType.DARK) == (10.0, 20.0, 30.0)
    assert kept_only.discard_exp_times(ImageType.DARK) == (10.0, 10.0)
    # A discarded flat shorter than the shutter minimum is refused too.
    error = problems_of("n_flat: 2\nn_discard_flat: 1\nexp_times_flat: [0.01, 5, 5]\n")
    assert error.keys == ["exp_times_flat"]


def test_flat_exposure_time_minimum() -> None:
    refused("n_flat: 2\nexp_times_flat: [0.05, 0.05]\n", ["exp_times_flat"], "0.1 s minimum")


def test_ptc_needs_equal_consecutive_pairs() -> None:
    refused(
        "do_ptc: true\nn_flat: 4\nexp_times_flat: [1, 1, 2, 3]\n",
        ["exp_times_flat"],
        "entries 3 and 4 differ",
    )
    odd = problems_of("do_ptc: true\nn_flat: 3\nexp_times_flat: 2\n")
    assert "odd" in str(odd)
    config = parse_config_text("do_ptc: true\nn_flat: 4\nexp_times_flat: [1, 1, 2, 2]\n")
    assert config.run_ptc


def test_gain_requested_without_pair() -> None:
    refused(
        "do_gain_from_flat_pairs: true\nn_flat: 3\nexp_times_flat: [1, 2, 3]\n",
        ["do_gain_from_flat_pairs"],
        "at least one pair",
    )
    # Defaulted: no error, the default simply does not apply.
    config = parse_config_text("n_flat: 3\nexp_times_flat: [1, 2, 3]\n")
    assert not config.run_gain
    config = parse_config_text("n_flat: 2\nexp_times_flat: [1.2, 1.2]\ndo_gain_from_flat_pairs: true\n")
    assert config.run_gain and config.flat_pairs == [(0, 1)]


@pytest.mark.parametrize("key", ["do_defects", "do_ptc", "do_gain_from_flat_pairs"])
@pytest.mark.parametrize("mode", ["BIAS", "DARK", "BIAS_DARK"])
def test_flat_products_need_bias_dark_flat(key: str, mode: str) -> None:
    refused(f"script_mode: {mode}\n{key}: true\n", [key], f"script_mode is {mode}")
    config = parse_config_text(f"script_mode: {mode}\n{key}: false\n")
    assert not (config.run_defects or config.run_ptc or config.run_gain)


def test_default_gain_does_not_apply_outside_bias_dark_flat() -> None:
    config = parse_config_text("script_mode: BIAS_DARK\n")
    assert config.do_gain_from_flat_pairs and not config.run_gain
    assert any("does not apply in script_mode BIAS_DARK" in note for note in config.notes)


def test_validity_range() -> None:
    refused(
        "certify_calib_begin_date: '2022-11-05'\ncertify_calib_end_date: '2022-11-05'\n",
        ["certify_calib_end_date"],
        "not after",
    )
    both = ["certify_calib_begin_date", "certify_calib_end_date"]
    refused("certify_calib_begin_date: '2022-13-45'\ncertify_calib_end_date: 'tomorrow'\n", both)
    config = parse_config_text(
        "certify_calib_begin_date: '2022-11-04T12:00:00'\ncertify_calib_end_date: '2022-11-05'\n"
    )
    assert config.certify_calib_begin_date == "2022-11-04T12:00:00"


def test_unknown_detectors() -> None:
    refused("detectors: [0, 9, 12]\n", ["detectors"], "[9, 12]", "0..8")
    assert parse_config_text("detectors: [8, 0]\n").detector_ids == (8, 0)


def test_generate_with_default_collection_is_allowed() -> None:
    config = parse_config_text("generate_calibrations: true\n")
    assert config.calib_collection == "LSSTComCam/calib/daily"
    assert CalibrationPlan.from_config(config).certified_products == ("bias", "dark", "flat")
    assert any("default calib_collection" in note for note in config.notes)


def test_recovery_keys() -> None:
    config = parse_config_text("script_mode: BIAS_DARK\nexposure_ids: {bias: [11, 12]}\n")
    assert config.exposure_ids == {ImageType.BIAS: (11, 12)}
    assert config.is_recovered(ImageType.BIAS) and not config.is_recovered(ImageType.DARK)
    error = problems_of("script_mode: BIAS\nexposure_ids: {dark: [1]}\n")
    assert error.keys == ["exposure_ids.dark"]
    error = problems_of("exposure_ids: {bias: [1], dark: [1]}\n")
    assert "also listed under bias" in str(error)
    error = problems_of("exposure_ids: {bias: [1]}\nresume_from_report: /tmp/report.json\n")
    assert error.keys == ["resume_from_report"]


def test_collection_template() -> None:
    assert COLLECTION_TEMPLATE_FIELDS == ("timestamp",)
    config = parse_config_text("calib_collection: 'u/me/calib.{timestamp}'\n")
    resolved = resolve_templates(config, 1700000000.0)
    assert resolved.calib_collection == "u/me/calib.20231114T221320"
    assert resolve_templates(parse_config_text(""), 0.0).calib_collection == "LSSTComCam/calib/daily"
    error = problems_of("calib_collection: 'u/me/calib.{date}'\n")
    assert error.keys == ["calib_collection"]


def test_all_problems_are_reported_together() -> None:
    error = problems_of(
        "n_bias: -1\nexp_times_flats: 3\nscript_mode: BIAS\ndo_ptc: true\ndetectors: [10]\n"
        "certify_calib_end_date: '1900-01-01'\n"
    )
    assert set(error.keys) == {"n_bias", "exp_times_flats", "do_ptc", "detectors", "certify_calib_end_date"}
    assert error.describe().startswith("Invalid configuration (5 problems):")
    for problem in error.problems:
        assert problem.line is not None


def test_background_task_timeout() -> None:
    """The anchor's key: seconds per background task; null (default) sets no bound."""
    assert parse_config_text("").background_task_timeout is None
    assert parse_config_text("background_task_timeout: 30").background_task_timeout == 30.0
    for bad in ("0", "-5", "abc"):
        error = problems_of(f"background_task_timeout: {bad}\n")
        assert error.keys == ["background_task_timeout"], bad
