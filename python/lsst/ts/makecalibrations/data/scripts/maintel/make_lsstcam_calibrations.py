#!/usr/bin/env python
# This file is part of ts_makecalibrations.
#
# Executable loaded by the ScriptQueue (MTQueue) as maintel/make_lsstcam_calibrations.py:
#   make_lsstcam_calibrations.py <index> [--schema]

import asyncio

from lsst.ts.makecalibrations.scripts import MakeLSSTCamCalibrations

asyncio.run(MakeLSSTCamCalibrations.amain())
