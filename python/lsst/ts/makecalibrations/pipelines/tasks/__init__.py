"""PipelineTasks wrapping the numpy calibration algorithms of `lsst.ts.makecalibrations.pipelines`.

Each module holds the connections, config and task of one cp_pipe / cp_verify step; the pipeline YAML
files under ``pipelines/data`` name them by full class path. Nothing is imported here so a pipeline only
imports the tasks it uses.

May import: lsst.pipe.base, lsst.daf.butler, lsst.pex.config, `pipelines`, `butler`.
"""
