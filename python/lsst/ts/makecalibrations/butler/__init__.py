"""Data butler gateway: repository creation, LSSTComCam instrument and camera geometry, storage
classes and formatters, exposure records and raw ingest, certification and conflict checks, readers.

May import: lsst.daf.butler, lsst.pipe.base, lsst.images, numpy, astropy. Never `sal`, `sim` or `scripts`.
"""
