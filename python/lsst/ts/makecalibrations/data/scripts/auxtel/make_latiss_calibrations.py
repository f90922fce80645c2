#!/usr/bin/env python
# This file is part of ts_makecalibrations.
#
# Executable loaded by the ScriptQueue (ATQueue) as auxtel/make_latiss_calibrations.py:
#   make_latiss_calibrations.py <index> [--schema]

import asyncio

from lsst.ts.makecalibrations.scripts import MakeLatissCalibrations

asyncio.run(MakeLatissCalibrations.amain())
