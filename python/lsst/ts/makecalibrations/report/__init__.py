"""Run report rendering: the PNG plots written next to a run report (PTC, gain and read-noise maps,
verification failures, mosaics of the combined calibrations).

Figures are drawn with matplotlib's object-oriented API on the Agg canvas (no pyplot, no global
backend switch), so they can be made from a thread, a test or a notebook alike.

May import: numpy, matplotlib, `calib`, `butler`. Never `sal`, `sim`, `scripts` or `cli`.
"""
