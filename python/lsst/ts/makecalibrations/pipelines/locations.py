"""Where the pipeline YAML files live: ``${CP_PIPE_DIR}`` / ``${CP_VERIFY_DIR}`` → package data.

The script sends pipelines as the real OCPS receives them, e.g.
``${CP_PIPE_DIR}/pipelines/LSSTComCam/cpBias.yaml`` or ``...cpPtc.yaml#cpPtcGainFromFlatPairs``.
`expand_pipeline_uri` turns such a string into an absolute path inside this package's ``data``
directory, keeping a ``#subset`` suffix, so the pipetask executor can run it. The LSSTCam and LATISS
pipelines import the LSSTComCam task definitions through ``$CP_PIPE_DIR`` / ``$CP_VERIFY_DIR`` (as the
real cp_pipe's per-camera pipelines import ``_ingredients``): `pipeline_environment` gives the
environment in which those imports resolve to this package, and `loading_environment` applies it to
an in-process pipeline load.

May import: the standard library only.
"""

from __future__ import annotations

__all__ = [
    "PIPELINE_DIRS",
    "expand_pipeline_uri",
    "loading_environment",
    "pipeline_environment",
    "pipeline_path",
]

import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

_DATA = Path(__file__).resolve().parent / "data"

PIPELINE_DIRS: dict[str, Path] = {
    "CP_PIPE_DIR": _DATA / "cp_pipe",
    "CP_VERIFY_DIR": _DATA / "cp_verify",
}
"""Environment-style variables the pipeline strings may use, and the package directories they mean."""

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def expand_pipeline_uri(uri: str) -> str:
    """Expand ``${CP_PIPE_DIR}`` / ``${CP_VERIFY_DIR}`` (or ``$NAME``) in a pipeline string.

    Parameters
    ----------
    uri : `str`
        Pipeline path, optionally with a ``#label,label`` or ``#subset`` suffix.

    Returns
    -------
    expanded : `str`
        Absolute path with the suffix kept; strings without variables come back unchanged.

    Raises
    ------
    ValueError
        If the string uses a variable other than those of `PIPELINE_DIRS`.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        try:
            return str(PIPELINE_DIRS[name])
        except KeyError:
            raise ValueError(
                f"Unknown variable ${{{name}}} in pipeline {uri!r}; expected one of {sorted(PIPELINE_DIRS)}."
            ) from None

    return _VARIABLE.sub(replace, uri)


def pipeline_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return ``base`` (default: ``os.environ``) with `PIPELINE_DIRS` set, for a pipetask process."""
    env = dict(os.environ if base is None else base)
    env.update({name: str(path) for name, path in PIPELINE_DIRS.items()})
    return env


@contextlib.contextmanager
def loading_environment() -> Iterator[None]:
    """Set `PIPELINE_DIRS` in ``os.environ`` while a pipeline (and its imports) is loaded in-process."""
    saved = {name: os.environ.get(name) for name in PIPELINE_DIRS}
    os.environ.update({name: str(path) for name, path in PIPELINE_DIRS.items()})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def pipeline_path(uri: str) -> Path:
    """Return the file path of an expanded or unexpanded pipeline string (without the suffix)."""
    return Path(expand_pipeline_uri(uri).split("#", 1)[0])
