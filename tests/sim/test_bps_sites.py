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

"""The example BPS site configurations (examples/bps/) load with the Parsl plugin's site classes."""

import inspect
import pathlib

import pytest

pytest.importorskip("lsst.ctrl.bps.parsl")

from lsst.ctrl.bps import BpsConfig  # noqa: E402
from lsst.ctrl.bps.parsl.site import SiteConfig  # noqa: E402

EXAMPLES = pathlib.Path(__file__).parents[2] / "examples" / "bps"


def site_of(name: str) -> SiteConfig:
    """The site object the Parsl service would make from example ``name`` (a submission including it)."""
    config = BpsConfig(str(EXAMPLES / name))
    config[".bps_defined.operator"] = "ocps"  # what the workflow name is made of
    config[".bps_defined.uniqProcName"] = "job"
    return SiteConfig.from_config(config)


def test_slurm_example_makes_a_slurm_executor() -> None:
    from parsl.providers import SlurmProvider

    site = site_of("site-slurm.yaml")
    (executor,) = site.get_executors()
    provider = executor.provider
    assert isinstance(provider, SlurmProvider)
    assert (provider.nodes_per_block, provider.cores_per_node, provider.walltime) == (4, 32, "02:00:00")
    assert "#SBATCH --partition=rubin" in provider.scheduler_options
    assert "#SBATCH --qos=normal" in provider.scheduler_options
    assert site.get_command_prefix().startswith("source /shared/ts_makecalibrations/.venv/bin/activate")
    assert site.select_executor(None) == executor.label


def test_kubernetes_example_gives_the_provider_what_it_takes() -> None:
    from parsl.providers import KubernetesProvider

    site = site_of("site-kubernetes.yaml")
    options = site.provider_options()
    assert options["image"] == "registry.example.org/ts-makecalibrations:latest"
    assert options["persistent_volumes"] == [("rubin-repo", "/repo")]
    assert (options["max_blocks"], options["max_cpu"], options["max_mem"]) == (20, 4.0, "8Gi")
    assert set(options) <= set(inspect.signature(KubernetesProvider).parameters)
    assert site.select_executor(None) == "kubernetes"
