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

"""The bad-input corpus (tests/data/bad_inputs.yaml) refused by the configuration, naming the key."""

from typing import Any

import pytest

from lsst.ts.makecalibrations.calib.config import ConfigError, parse_config_text
from lsst.ts.makecalibrations.calib.options import (
    OptionsError,
    check_collection_name,
    parse_job_options,
    split_collections,
)
from tests.helpers import load_bad_inputs

CORPUS = load_bad_inputs()


@pytest.mark.parametrize("entry", CORPUS, ids=[e["id"] for e in CORPUS])
def test_corpus_entry_is_refused_naming_the_key(entry: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_config_text(entry["text"])
    problems = excinfo.value.problems
    matching = [p for p in problems if p.key == entry["key"] and entry["fragment"] in p.message]
    assert matching, f"no problem of key {entry['key']!r} with {entry['fragment']!r} in {problems}"
    described = excinfo.value.describe()
    if entry["key"] is not None:
        assert f"{entry['key']}: " in described
    assert len(described) < 2000  # never the 10 MB note, nor the expanded alias bomb, echoed back


def test_corpus_covers_every_kind_of_bad_input() -> None:
    ids = {e["id"] for e in CORPUS}
    for required in (
        "exp_times_dark_nan",
        "exp_times_flat_inf",
        "pipeline_job_timeout_nan",
        "oods_timeout_nan",
        "wait_between_exposures_inf",
        "n_bias_100000",
        "n_bias_1e100",
        "calib_collection_space",
        "calib_collection_comma",
        "calib_collection_blank",
        "calib_collection_nul",
        "calib_collection_newline",
        "note_too_long",
        "yaml_alias_bomb",
    ):
        assert required in ids
    # The 12 injection probes of issue 9, and more.
    assert len([i for i in ids if i.startswith(("options_", "collections_"))]) >= 12


def test_nan_is_reported_once_and_other_keys_still_checked() -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_config_text("exp_times_dark: .nan\nn_flat: 0\n")
    assert excinfo.value.keys == ["exp_times_dark", "n_flat"]


def test_limits_accept_what_real_runs_use() -> None:
    config = parse_config_text(
        "n_bias: 1000\nn_discard_bias: 100\nexp_times_dark: 3600\npipeline_job_timeout: 604800\n"
        "oods_timeout: 86400\nnote: |\n  two lines\n  of\tnote\n"
        "calib_collection: 'LSSTComCam/calib/u/me/DM-123_test.{timestamp}'\n"
        "input_collections_verify_bias: 'LSSTComCam/calib/u/plazas/2021SEP16.1,LSSTComCam/calib'\n"
        'config_options_bias: "-c isr:doDefect=False -c \'cpBiasCombine:mask=[\\"SAT\\", \\"INTRP\\"]\'"\n'
    )
    assert config.n_bias == 1000
    assert config.note == "two lines\nof\tnote\n"


def test_duplicate_keys_are_found_once_through_aliases() -> None:
    text = "exposure_ids: &ids\n  bias: [1]\n  bias: [2]\nresume_from_report: null\n"
    text += "".join(f"x{i}: *ids\n" for i in range(5))
    with pytest.raises(ConfigError) as excinfo:
        parse_config_text(text)
    duplicates = [p for p in excinfo.value.problems if "duplicate key" in p.message]
    assert [p.key for p in duplicates] == ["exposure_ids.bias"]


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(ConfigError, match="nested"):
        parse_config_text("detectors: " + "[" * 50 + "]" * 50 + "\n")
    with pytest.raises(ConfigError, match="nested more than 20 levels deep"):
        parse_config_text("detectors: " + "[" * 5000 + "]" * 5000 + "\n")


@pytest.mark.parametrize(
    "name", ["LSSTComCam/calib", "u/ocps/1a2b", "LSSTComCam/calib/u/plazas/2021SEP16.1", "a-b+c@d:e_f"]
)
def test_valid_collection_names(name: str) -> None:
    check_collection_name(name)
    assert split_collections(f"{name},{name}") == [name, name]


@pytest.mark.parametrize(
    "name", ["", " a", "a b", "a,b", "/a", "a/", "a//b", "a\x00b", "a\nb", "a*", "a?", "é"]
)
def test_invalid_collection_names(name: str) -> None:
    with pytest.raises(OptionsError):
        check_collection_name(name)


def test_job_option_grammar_is_the_executors() -> None:
    parsed = parse_job_options("-j 2 -i a,b -c cpBiasIsr:doDefect=False --register-dataset-types")
    assert (parsed.processes, parsed.inputs, parsed.overrides) == (
        2,
        ["a", "b"],
        [("cpBiasIsr", "doDefect", "False")],
    )
    with pytest.raises(OptionsError, match="'-j' is not allowed here"):
        parse_job_options("-j 2", allowed=frozenset({"-c"}))
    with pytest.raises(OptionsError, match="-c needs label:field=value"):
        parse_job_options("-c isr:doDefect=")
