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

"""The cosmic-ray finder (findCosmicRays criteria) and CR_NOISE in the cp_verify statistics."""

import math

import numpy as np
import pytest

from lsst.ts.makecalibrations.butler.camera import get_camera
from lsst.ts.makecalibrations.pipelines.cosmic_rays import (
    CosmicRaySettings,
    TooManyCosmicRaysError,
    find_cosmic_rays,
    psf_thresholds,
)
from lsst.ts.makecalibrations.pipelines.verify import VerifyThresholds, detector_stats

SIGMA = 7.0

# (row, column) offsets of the injected cosmic rays from their start, and the charge per pixel (e-).
INJECTED = {
    (20, 30): ([(0, 0)], 200.0),  # single pixel, > 150 DN and > 6 sigma
    (60, 100): ([(0, 0)], 1500.0),
    (90, 40): ([(0, k) for k in range(4)], 300.0),  # short horizontal track
    (130, 200): ([(k, 0) for k in range(3)], 250.0),  # short vertical track
    (160, 60): ([(k, k) for k in range(5)], 400.0),  # diagonal track
}


def noise_image(shape: tuple[int, int], seed: int, level: float = 0.0) -> np.ndarray:
    return (level + np.random.default_rng(seed).normal(0.0, SIGMA, size=shape)).astype(np.float32)


def inject(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Image with the INJECTED cosmic rays and their mask."""
    hit, truth = image.copy(), np.zeros(image.shape, bool)
    for (y0, x0), (offsets, charge) in INJECTED.items():
        for dy, dx in offsets:
            hit[y0 + dy, x0 + dx] += charge
            truth[y0 + dy, x0 + dx] = True
    return hit, truth


def gaussian_source(shape: tuple[int, int], y0: float, x0: float, fwhm: float, peak: float) -> np.ndarray:
    sigma = fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (peak * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / (2.0 * sigma**2))).astype(np.float32)


def test_psf_thresholds_are_the_gaussian_neighbour_ratios() -> None:
    """cond3_fac2 x PSF(1 px) / PSF(0) and x PSF(sqrt 2 px) / PSF(0) for a 3 px FWHM Gaussian."""
    axis, diagonal = psf_thresholds(CosmicRaySettings())
    sigma2 = (3.0 / 2.354820045) ** 2
    assert axis == pytest.approx(0.4 * math.exp(-0.5 / sigma2), rel=1e-6)
    assert diagonal == pytest.approx(0.4 * math.exp(-1.0 / sigma2), rel=1e-6)
    with pytest.raises(ValueError, match="psf_fwhm"):
        CosmicRaySettings(psf_fwhm=0.0)


def test_injected_cosmic_rays_are_found_and_repaired() -> None:
    clean = noise_image((200, 256), seed=5, level=20.0)
    hit, truth = inject(clean)
    found = find_cosmic_rays(hit, SIGMA, np.zeros(hit.shape, bool), background=20.0)
    assert found.n_cosmic_rays == len(INJECTED)
    assert found.mask[truth].all()
    # Growth adds at most a few noise pixels around each cosmic ray.
    assert found.mask.sum() <= truth.sum() + 2 * len(INJECTED)
    assert np.abs(found.repaired[truth] - clean[truth]).max() < 5 * SIGMA
    assert found.repaired[~found.mask].tolist() == hit[~found.mask].tolist()
    assert found.repaired.std(ddof=1) == pytest.approx(clean.std(ddof=1), rel=0.01)
    assert hit.std(ddof=1) > 1.5 * clean.std(ddof=1)


def test_min_dn_applies_to_the_footprint_sum() -> None:
    """A sharp 10-sigma pixel (70 e-) is not a cosmic ray; two adjacent 90 e- pixels (180 e-) are."""
    image = noise_image((64, 64), seed=8)
    image[20, 20] += 10 * SIGMA
    image[40, 30] += 90.0
    image[40, 31] += 90.0
    found = find_cosmic_rays(image, SIGMA, np.zeros(image.shape, bool), background=0.0)
    assert not found.mask[20, 20]
    assert found.mask[40, 30] and found.mask[40, 31]
    assert found.n_cosmic_rays == 1


def test_psf_like_star_and_broad_blob_are_not_cosmic_rays() -> None:
    shape = (120, 120)
    image = noise_image(shape, seed=3)
    image += gaussian_source(shape, 30, 30, fwhm=3.0, peak=5000.0)  # a star with the PSF
    image += gaussian_source(shape, 80, 80, fwhm=9.0, peak=3000.0)  # a broad blob
    found = find_cosmic_rays(image, SIGMA, np.zeros(shape, bool), background=0.0)
    assert found.n_cosmic_rays == 0 and not found.mask.any()
    # The same test flags a source much sharper than the PSF.
    sharp = image + gaussian_source(shape, 30, 90, fwhm=0.8, peak=3000.0)
    found = find_cosmic_rays(sharp, SIGMA, np.zeros(shape, bool), background=0.0)
    assert found.n_cosmic_rays == 1 and found.mask[30, 90]
    assert not found.mask[:60, :60].any() and not found.mask[60:].any()


def test_noise_only_has_no_cosmic_rays_and_excluded_pixels_never_are() -> None:
    image = noise_image((512, 512), seed=21, level=1000.0)
    found = find_cosmic_rays(image, SIGMA, np.zeros(image.shape, bool), background=1000.0)
    assert found.n_cosmic_rays == 0 and not found.mask.any()
    assert found.repaired.tolist() == image.tolist()
    hit, truth = inject(image)
    excluded = np.zeros(image.shape, bool)
    excluded[60, 100] = True
    found = find_cosmic_rays(hit, SIGMA, excluded, background=1000.0)
    assert not found.mask[60, 100] and found.repaired[60, 100] == hit[60, 100]
    assert found.n_cosmic_rays == len(INJECTED) - 1


def test_too_many_cosmic_ray_pixels_raise() -> None:
    image = noise_image((100, 120), seed=2)
    image[2:-2:3, 2:-2:3] += 1000.0
    n_hits = int((image > 500).sum())
    with pytest.raises(TooManyCosmicRaysError, match="nCrPixelMax = 100") as info:
        find_cosmic_rays(
            image, SIGMA, np.zeros(image.shape, bool), 0.0, CosmicRaySettings(n_cr_pixel_max=100)
        )
    assert info.value.n_pixels == n_hits
    roomy = CosmicRaySettings(n_cr_pixel_max=2 * n_hits)
    found = find_cosmic_rays(image, SIGMA, np.zeros(image.shape, bool), 0.0, roomy)
    assert found.n_cosmic_rays == n_hits
    with pytest.raises(ValueError, match="2-d"):
        find_cosmic_rays(image, SIGMA, np.zeros((3, 3), bool), 0.0)


def detector_image(seed: int) -> np.ndarray:
    """A 16-amp detector of 200 x 1024 pixels (amps of 128 x 100) of read noise."""
    return noise_image((200, 1024), seed=seed)


def test_cr_noise_agrees_with_noise_with_and_without_cosmic_rays() -> None:
    detector = get_camera()[0]
    clean = detector_image(seed=13)
    no_mask = np.zeros(clean.shape, bool)
    before = detector_stats("BIAS", clean, no_mask, detector, {})
    assert before["ISR"]["CR_PIXELS"] == 0
    for amp in before["AMP"].values():
        assert amp["CR_NOISE"] == pytest.approx(amp["NOISE"], rel=0.01)
    hit = clean.copy()
    for y0 in (20, 120):
        for x0 in range(10, 1024, 64):
            hit[y0, x0] += 800.0
            hit[y0 + 1, x0 + 1] += 500.0
    after = detector_stats("DARK", hit, no_mask, detector, {})
    assert after["ISR"]["CR_PIXELS"] >= 2 * 2 * 16
    for name, amp in after["AMP"].items():
        assert amp["CR_NOISE"] == pytest.approx(before["AMP"][name]["CR_NOISE"], rel=0.01)
        assert amp["NOISE"] == pytest.approx(before["AMP"][name]["NOISE"], rel=0.02)
        assert after["VERIFY"]["AMP"][name]["CR_NOISE"] is True
    # Without the repair the plain stdev would fail cp_verify's 5 % CR_NOISE test.
    assert hit[:100, :64].std(ddof=1) > 1.2 * after["AMP"]["C00"]["NOISE"]


def test_too_many_cosmic_rays_is_a_processing_failure() -> None:
    """cp_verify's FORCE_FAILURE: every amp PROCESSING=False, CR_NOISE of the unrepaired image."""
    detector = get_camera()[0]
    image = detector_image(seed=2)
    image[2:-2:3, 2:-2:3] += 1000.0
    thresholds = VerifyThresholds(cosmic_rays=CosmicRaySettings(n_cr_pixel_max=100))
    stats = detector_stats("DARK", image, np.zeros(image.shape, bool), detector, {}, thresholds)
    assert stats["SUCCESS"] is False and stats["ISR"]["CR_PIXELS"] > 100
    for amp in stats["VERIFY"]["AMP"].values():
        assert amp["PROCESSING"] is False and amp["SUCCESS"] is False
    assert stats["AMP"]["C00"]["CR_NOISE"] == pytest.approx(float(image[:100, :128].std(ddof=1)), rel=1e-4)


@pytest.mark.parametrize("shape", [(5, 7), (33, 40), (64, 9), (101, 57)])
def test_preselection_by_bands_is_the_whole_frame_test(shape: tuple[int, int]) -> None:
    """The candidates found band by band are those of the test on the whole frame at once, in raster
    order (the same float32 arithmetic per pixel)."""
    from lsst.ts.makecalibrations.pipelines import cosmic_rays

    rng = np.random.default_rng(shape[0])
    values = rng.normal(0.0, 5.0, shape).astype(np.float32)
    values[rng.random(shape) < 0.02] += 200.0
    values[0, 0] = np.nan
    noise = np.full(shape, 5.0, dtype=np.float32)
    noise[:, shape[1] // 2 :] = 2.0
    with np.errstate(invalid="ignore"):
        whole = values[1:-1, 1:-1] - cosmic_rays._neighbour_minimum(values) >= 6.0 * noise[1:-1, 1:-1]
    rows, cols = np.nonzero(whole)
    got_rows, got_cols = cosmic_rays._preselect(values, noise, 6.0)
    assert np.array_equal(got_rows, rows + 1) and np.array_equal(got_cols, cols + 1)
    assert rows.size > 0


def test_cr_noise_is_the_plain_stdev_of_the_repaired_amps() -> None:
    """CR_NOISE is plain_moments' STDEV of the repaired image per amp: amps without a cosmic ray take
    the plain STDEV already computed for MEAN, the same number as measuring the repaired copy."""
    from lsst.ts.makecalibrations.butler.camera import AmpGeometry
    from lsst.ts.makecalibrations.pipelines.stats import plain_moments

    detector = get_camera()[0]
    image = detector_image(seed=21)
    image[30, 40] += 900.0  # one cosmic ray, in amp C00 (rows < 100, columns < 128)
    excluded = np.zeros(image.shape, bool)
    excluded[:, 300] = True
    stats = detector_stats("BIAS", image, excluded, detector, {})
    assert stats["ISR"]["CR_PIXELS"] > 0
    sigma = np.zeros(image.shape, np.float32)
    geometry = AmpGeometry(nx=image.shape[1] // 8, ny=image.shape[0] // 2)
    for amp in detector:
        sigma[amp.bbox_slices(geometry)] = stats["AMP"][amp.name]["NOISE"]
    sample = image[::4, ::4][~excluded[::4, ::4]]
    repaired = find_cosmic_rays(image, sigma, excluded, float(np.median(sample))).repaired
    for amp in detector:
        box = amp.bbox_slices(geometry)
        assert stats["AMP"][amp.name]["CR_NOISE"] == plain_moments(repaired[box], excluded[box])[1]
    assert stats["AMP"]["C00"]["CR_NOISE"] < plain_moments(image[:100, :128])[1]
