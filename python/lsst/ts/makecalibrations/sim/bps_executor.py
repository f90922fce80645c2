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

"""The OCPS job executor that runs the pipelines through ``bps submit`` with the Parsl plugin.

`BpsExecutor` is the `pipetask_executor.PipetaskExecutor` with another way of running the checked job:
the same option grammar, pipeline expansion, ``-c`` label check, per-exposure ISR fallback and
``-j`` clamp, the same RUN collection ``u/ocps/<job_id>`` (no CHAINED collection: ``pipetaskOutput``
and the final job's ``--update-output-chain`` are emptied), the same job log
``<log_dir or REPO/ocps>/<job_id>/outs/ocps.log`` (``bps submit``'s own output, then the executor's
notes), the same outcome rules. For each job it

1. writes ``<job_dir>/bps/submit.yaml``: ``pipelineYaml``, ``payload`` (``butlerConfig`` = the repo,
   ``inCollection``, ``dataQuery``, ``output`` = ``outputRun`` = ``u/ocps/<job_id>``), the ``-c``
   overrides as ``extraQgraphOptions``, ``submitPath`` ``<job_dir>/bps/submit``,
   ``wmsServiceClass: lsst.ctrl.bps.parsl.ParslService`` and the compute site: by default
   ``computeSite: local`` with ``site.local.class: lsst.ctrl.bps.parsl.sites.Local``, ``cores`` = the
   clamped ``-j``, no Parsl retries (pipetask does not retry either) and Parsl's ``run_dir`` in the
   job directory; with ``site_config`` (a BPS YAML file naming ``computeSite`` and its ``site``
   section, e.g. Slurm or Kubernetes, see ``doc/reference/bps.rst``) that file is included instead;
2. with ``cluster_by_detector`` (default), groups the quanta of each detector (or of
   ``detectors_per_job`` detectors) into one BPS job (``dimension_clustering`` on ``detector``, or
   on ``instrument`` partitioned by ``detector``), so a detector's ISR and combine run in one
   ``pipetask run-qbb`` process rather than one process per quantum: the tasks with the ``detector``
   dimension are clustered by stage, a stage ending at each task without it (e.g. ``cpFlatNormalize``,
   which needs every detector), which keeps the clustered graph acyclic;
3. runs ``bps submit <job_dir>/bps/submit.yaml`` (the Parsl service runs the workflow to its end in
   that process: quantum graph, ``pipetaskInit``, one ``pipetask run-qbb`` per cluster on the Parsl
   workers, the final ``butler aggregate-graph`` that brings the outputs into the repo) under
   `process_tree_guard`, with this Python environment's ``bin`` first on ``PATH`` (``pipetask`` and
   Parsl's ``process_worker_pool.py`` are found there) and `BPS_STARTUP_DIR` first on ``PYTHONPATH``
   (its ``sitecustomize`` repairs the ``zipfile`` seek that breaks the reading of large ``.qg``
   graphs on Python 3.12.1, see ``data/bps_startup/sitecustomize.py``);
4. tells the job's progress from the per-cluster logs BPS writes (``<submitPath>/logs/<label>/...
   .stderr``, each ending with pipetask's ``Executed N quanta successfully, F failed ...`` line) and
   the total from the quantum graph line of ``bps submit``'s output (``QuantumGraph contains T quanta``);
5. fails a job whose ``bps submit`` exited 0 but whose quanta did not all succeed (the Parsl service
   waits for every job and then returns), naming the first failed cluster's log and its error line.

Abort: the job's process group gets ``SIGTERM``; the guard then kills every process of the job, the
Parsl interchange and worker pools included (``LocalProvider`` starts each pool in a process group of
its own, out of reach of a process-group kill), and the outcome has exit code 255, phase ``aborted``.
The guard does the same when this process dies.

May import: the standard library, yaml, lsst.daf.butler, lsst.pipe.base, `.pipetask_executor`,
`.process_tree_guard`, `.job_heap`, `.ocps_jobs`.
"""

from __future__ import annotations

__all__ = ["BPS_STARTUP_DIR", "BpsExecutor", "PARSL_SERVICE", "LOCAL_SITE_CLASS", "detector_clusters"]

import os
import re
import shlex
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import job_heap
from .ocps_jobs import PIPETASK_PROGRESS, JobRequest
from .pipetask_executor import PipetaskExecutor, PreparedJob, _last_error_line
from .process_tree_guard import tree_guard_command

PARSL_SERVICE = "lsst.ctrl.bps.parsl.ParslService"
"""The BPS workflow management service class of the Parsl plugin."""

LOCAL_SITE_CLASS = "lsst.ctrl.bps.parsl.sites.Local"
"""The Parsl plugin's site for running on this machine (a ``LocalProvider``)."""

BPS_STARTUP_DIR = Path(__file__).parent / "data" / "bps_startup"
"""Directory put first on ``PYTHONPATH`` of every BPS job: its ``sitecustomize`` repairs ``zipfile``'s
relative seek where the interpreter needs it (without it the jobs of a large ``.qg`` quantum graph,
e.g. 189 detectors, fail with ``EOFError``; see that module)."""

DIMENSION_CLUSTERING = "lsst.ctrl.bps.quantum_clustering_funcs.dimension_clustering"

QUANTUM_GRAPH_SIZE = re.compile(r"QuantumGraph contains (?P<total>\d+) quanta")
"""The line of ``pipetask qgraph`` (in ``bps submit``'s output) giving the number of quanta."""

_NOT_QUANTUM_JOBS = ("pipetaskInit", "finalJob")
"""BPS log folders of the jobs that run no quantum."""


def detector_clusters(pipeline_uri: str) -> dict[str, list[str]]:
    """Per-detector clusters of a pipeline: cluster name -> task labels (see the module docstring).

    Parameters
    ----------
    pipeline_uri : `str`
        Pipeline file, optionally with a ``#subset``.

    Returns
    -------
    clusters : `dict` [`str`, `list` [`str`]]
        ``detectorStage<k>`` -> the labels with the ``detector`` dimension that come after ``k``
        tasks without it (on the longest path); labels without it are left out (one quantum each).
    """
    from lsst.daf.butler import DimensionUniverse
    from lsst.pipe.base import Pipeline

    graph = Pipeline.from_uri(pipeline_uri).to_graph()
    graph.resolve(dimensions=DimensionUniverse())
    per_detector = {label: "detector" in graph.tasks[label].dimensions.names for label in graph.tasks}
    xgraph = graph.make_task_xgraph()
    stage: dict[str, int] = {}
    for node in _topological(xgraph):
        label = node.name
        parents = [parent.name for parent in xgraph.predecessors(node)]
        stage[label] = max((stage[name] + (0 if per_detector[name] else 1) for name in parents), default=0)
    clusters: dict[str, list[str]] = {}
    for label in graph.tasks:
        if per_detector[label]:
            clusters.setdefault(f"detectorStage{stage[label]}", []).append(label)
    return clusters


def _topological(xgraph: Any) -> list[Any]:
    import networkx

    return list(networkx.topological_sort(xgraph))


class _ClusterLogProgress:
    """Quanta done/failed from the BPS cluster logs; the total from ``bps submit``'s output."""

    def __init__(self, log_path: Path, logs_dir: Path) -> None:
        self.log_path = log_path
        self.logs_dir = logs_dir
        self.total: int | None = None
        self._files: dict[Path, tuple[int, int, int]] = {}
        """Cluster log -> (size read, done, failed)."""

    def _read_total(self) -> None:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return
        match = QUANTUM_GRAPH_SIZE.search(text)
        if match:
            self.total = int(match["total"])

    def cluster_logs(self) -> list[Path]:
        """The ``.stderr`` logs of the clusters started so far."""
        if not self.logs_dir.is_dir():
            return []
        return sorted(
            path
            for path in self.logs_dir.rglob("*.stderr")
            if path.relative_to(self.logs_dir).parts[0] not in _NOT_QUANTUM_JOBS
        )

    def counts(self, path: Path) -> tuple[int, int]:
        """(done, failed) of one cluster log (0, 0 while it runs)."""
        return self._files.get(path, (0, 0, 0))[1:]

    def __call__(self) -> tuple[int, int, int] | None:
        if self.total is None:
            self._read_total()
            if self.total is None:
                return None
        for path in self.cluster_logs():
            try:
                size = path.stat().st_size
            except OSError:
                continue
            if path in self._files and self._files[path][0] == size:
                continue
            text = path.read_text(errors="replace")
            matches = list(PIPETASK_PROGRESS.finditer(text))
            done, failed = (int(matches[-1]["done"]), int(matches[-1]["failed"])) if matches else (0, 0)
            self._files[path] = (size, done, failed)
        done = sum(entry[1] for entry in self._files.values())
        failed = sum(entry[2] for entry in self._files.values())
        return done, failed, self.total


class BpsExecutor(PipetaskExecutor):
    """Runs OCPS jobs with ``bps submit`` and the Parsl plugin (see the module docstring).

    Parameters
    ----------
    repo, clock, log_dir
        As for `PipetaskExecutor`.
    max_processes : `int`, optional
        Upper limit of ``-j`` (as for `PipetaskExecutor`), which is the local site's ``cores``.
    bps : `~collections.abc.Sequence` [`str`], optional
        Command that runs bps; default: the ``bps`` script of this Python environment.
    site_config : `str` or `os.PathLike`, optional
        BPS YAML file with ``computeSite`` and its ``site`` section (included in every submission);
        the local site when `None`.
    cluster_by_detector : `bool`, optional
        Run each detector's quanta in one BPS job (default) rather than one job per quantum.
    detectors_per_job : `int`, optional
        With ``cluster_by_detector``, the detectors of one BPS job (default 1). More than one uses
        BPS's partitioning (``partitionDimensions: detector``, ``partitionMaxSize``): fewer
        ``pipetask`` start-ups when the detectors outnumber the workers many times (LSSTCam's 189).
    """

    tool = "bps"
    command_name = "bps submit"
    exit_signal = signal.SIGTERM  # the tree guard kills the rest; a SIGKILL would stop it first

    def __init__(
        self,
        repo: str | os.PathLike[str],
        clock: Any = None,
        max_processes: int = 1,
        log_dir: str | os.PathLike[str] | None = None,
        bps: Sequence[str] | None = None,
        site_config: str | os.PathLike[str] | None = None,
        cluster_by_detector: bool = True,
        detectors_per_job: int = 1,
    ) -> None:
        super().__init__(repo, clock=clock, max_processes=max_processes, log_dir=log_dir)
        self.bps = list(bps) if bps is not None else _default_bps()
        self.site_config = Path(site_config).resolve() if site_config is not None else None
        if self.site_config is not None and not self.site_config.is_file():
            raise ValueError(f"BPS site configuration {self.site_config} does not exist.")
        self.cluster_by_detector = bool(cluster_by_detector)
        if detectors_per_job < 1:
            raise ValueError(f"detectors_per_job must be >= 1, got {detectors_per_job}.")
        self.detectors_per_job = int(detectors_per_job)

    def estimate_wall_duration(self, request: JobRequest) -> float:
        """As pipetask's, plus the submission's own start-up (graph, init, workers, final job)."""
        return super().estimate_wall_duration(request) + 120.0

    def submit_config(self, job: PreparedJob) -> dict[str, Any]:
        """The BPS submit configuration of ``job`` (written as ``<job_dir>/bps/submit.yaml``)."""
        request = job.request
        if any(character in request.data_query for character in "{}"):
            # BPS formats its configuration values with {name} references.
            raise ValueError(f"the data query {request.data_query!r} has braces, which bps would expand.")
        bps_dir = job.job_dir / "bps"
        config: dict[str, Any] = {
            "pipelineYaml": job.pipeline,
            "operator": "ocps",
            "payload": {
                "payloadName": request.job_id,
                "butlerConfig": str(self.repo),
                "inCollection": ",".join(job.inputs),
                "dataQuery": request.data_query,
                "output": request.output_collection,
                "outputRun": request.output_collection,
            },
            # As the OCPS's pipetask run: outputs in the RUN collection only, no CHAINED collection.
            "pipetaskOutput": "",
            "pipetaskDataQuery": "-d " + shlex.quote(request.data_query),
            "extraQgraphOptions": shlex.join(arg for override in job.overrides for arg in ("-c", override)),
            "submitPath": str(bps_dir / "submit"),
            "wmsServiceClass": PARSL_SERVICE,
            # One process: with -j N the aggregation spawns N workers, each importing the stack.
            "finalJob": {"updateOutputChain": "", "requestCpus": 1},
            "parsl": {"log_level": "WARN"},
        }
        if self.site_config is not None:
            config["includeConfigs"] = [str(self.site_config)]
        else:
            config["computeSite"] = "local"
            config["site"] = {
                "local": {
                    "class": LOCAL_SITE_CLASS,
                    "cores": job.processes,
                    "retries": 0,
                    "run_dir": str(bps_dir / "runinfo"),
                }
            }
        if self.cluster_by_detector:
            clusters = detector_clusters(job.pipeline)
            if clusters:
                config["clusterAlgorithm"] = DIMENSION_CLUSTERING
                if self.detectors_per_job == 1:
                    grouping: dict[str, Any] = {"dimensions": "detector"}
                else:
                    grouping = {
                        "dimensions": "instrument",
                        "partitionDimensions": "detector",
                        "partitionMaxSize": self.detectors_per_job,
                    }
                config["cluster"] = {
                    name: {"pipetasks": ",".join(labels), **grouping} for name, labels in clusters.items()
                }
        return config

    def job_command(self, job: PreparedJob) -> list[str]:
        """Write the job's submit YAML; return ``bps submit <it>``."""
        import yaml

        bps_dir = job.job_dir / "bps"
        if bps_dir.exists():
            raise ValueError(f"{bps_dir} exists already: a job directory is used once.")
        bps_dir.mkdir(parents=True)
        path = bps_dir / "submit.yaml"
        path.write_text(yaml.safe_dump(self.submit_config(job), sort_keys=False))
        # Parsl's debug lines (every poll of its workers) would bury the job log.
        return [*self.bps, "--log-level", "parsl=WARNING", "submit", str(path)]

    def guard(self, command: Sequence[str]) -> list[str]:
        """``command`` under `process_tree_guard` (every process of the job dies with it)."""
        return tree_guard_command(command)

    def job_environment(self) -> dict[str, str] | None:
        """This environment with its ``bin`` first on ``PATH`` (pipetask, Parsl's worker pool) and
        `BPS_STARTUP_DIR` first on ``PYTHONPATH`` (the ``zipfile`` repair for large quantum graphs),
        with the job heap policy (`job_heap.job_environment`) that Parsl's workers pass on to pipetask."""
        env = job_heap.job_environment(os.environ)
        env["PATH"] = _prepend(str(Path(sys.executable).parent), env.get("PATH", ""))
        env["PYTHONPATH"] = _prepend(str(BPS_STARTUP_DIR), env.get("PYTHONPATH", ""))
        return env

    def progress_reader(self, job: PreparedJob) -> Callable[[], tuple[int, int, int] | None]:
        """Counts quanta in the cluster logs of the submission (see the module docstring)."""
        return _ClusterLogProgress(job.log_path, job.job_dir / "bps" / "submit" / "logs")

    def quanta_problem(self, job: PreparedJob, progress: Callable[[], tuple[int, int, int] | None]) -> str:
        """Why a submission that exited 0 failed (a quantum failed or did not run), or ``""``."""
        counts = progress()
        if counts is None:
            return "bps submit ended without a quantum graph (see the job log)."
        done, failed, total = counts
        if failed == 0 and done == total:
            return ""
        reason = ""
        if isinstance(progress, _ClusterLogProgress):
            for path in progress.cluster_logs():
                if progress.counts(path)[0] == 0:
                    reason = f"; first failed: {path} ({_last_error_line(path)})"
                    break
        return f"{failed} of {total} quanta failed and {total - done - failed} did not run{reason}"


def _prepend(entry: str, path: str) -> str:
    """``entry`` first in the search path ``path`` (``os.pathsep``-separated, maybe empty)."""
    return os.pathsep.join([entry, path]) if path else entry


def _default_bps() -> list[str]:
    script = Path(sys.executable).parent / "bps"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from lsst.ctrl.bps.cli.bps import main; sys.exit(main())"]
