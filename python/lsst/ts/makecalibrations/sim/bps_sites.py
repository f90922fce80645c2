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

"""A Kubernetes compute site for `bps_executor.BpsExecutor` (the Parsl plugin ships none).

`Kubernetes` is a ``lsst.ctrl.bps.parsl`` site: a BPS site configuration (``examples/bps/
site-kubernetes.yaml``) names it as ``site.<computeSite>.class``; the Parsl service then runs each BPS
job on a worker pool that Parsl's ``KubernetesProvider`` starts as a pod. The provider needs the
``kubernetes`` Python package and a kube config (``~/.kube/config`` or the in-cluster service account)
on the submitting machine; building the executor without them raises Parsl's ``OptionalModuleMissing``.

Settings under ``site.<computeSite>`` (see `Kubernetes.provider_options`): ``image`` (required: an image
holding this package's environment), ``namespace``, ``max_pods``, ``cpu_per_pod``,
``memory_per_pod``, ``volume_claim`` and ``mount_path`` (required: the PersistentVolumeClaim that
holds the butler repository and the submit directory, mounted at the same path as on the submitting
machine), ``worker_init`` (shell commands run in the pod before the worker starts) and the plugin's
``commandPrefix``.

May import: the standard library, lsst.ctrl.bps.parsl and parsl.
"""

from __future__ import annotations

__all__ = ["Kubernetes"]

from typing import TYPE_CHECKING, Any

from lsst.ctrl.bps.parsl.configuration import get_bps_config_value
from lsst.ctrl.bps.parsl.site import SiteConfig
from parsl.addresses import address_by_route
from parsl.executors import HighThroughputExecutor
from parsl.executors.base import ParslExecutor

if TYPE_CHECKING:
    from lsst.ctrl.bps.parsl.job import ParslJob

EXECUTOR_LABEL = "kubernetes"
"""Label of the one Parsl executor of the site."""


class Kubernetes(SiteConfig):
    """Parsl worker pools as Kubernetes pods (parameters: those of ``SiteConfig``)."""

    def provider_options(self) -> dict[str, Any]:
        """Keyword arguments of Parsl's ``KubernetesProvider`` from the site settings.

        Raises
        ------
        KeyError
            If ``image``, ``volume_claim`` or ``mount_path`` is missing.
        """
        site = self.site
        _, cpu_value = site.search("cpu_per_pod", {"default": 4.0})  # 4 and 0.5 both: any number
        cpu = float(cpu_value)
        memory = get_bps_config_value(site, "memory_per_pod", str, "8Gi")
        return {
            "image": get_bps_config_value(site, "image", str, required=True),
            "namespace": get_bps_config_value(site, "namespace", str, "default"),
            "init_blocks": 0,
            "min_blocks": 0,
            "max_blocks": get_bps_config_value(site, "max_pods", int, 10),
            "init_cpu": cpu,
            "max_cpu": cpu,
            "init_mem": memory,
            "max_mem": memory,
            "worker_init": get_bps_config_value(site, "worker_init", str, ""),
            "persistent_volumes": [
                (
                    get_bps_config_value(site, "volume_claim", str, required=True),
                    get_bps_config_value(site, "mount_path", str, required=True),
                )
            ],
        }

    def get_address(self) -> str:
        """The address of the interface the pods reach the submitting machine by (its default route)."""
        return address_by_route()

    def get_executors(self) -> list[ParslExecutor]:
        """One ``HighThroughputExecutor`` on a ``KubernetesProvider``."""
        from parsl.providers import KubernetesProvider

        provider = KubernetesProvider(**self.provider_options())
        return [HighThroughputExecutor(EXECUTOR_LABEL, provider=provider, address=self.get_address())]

    def select_executor(self, job: ParslJob) -> str:
        """Every BPS job runs on the site's one executor."""
        return EXECUTOR_LABEL
