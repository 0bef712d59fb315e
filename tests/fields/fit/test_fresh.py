"""FreSh (fields/fit/fresh.py) on a synthetic band-limited target whose right Fourier sigma is known
by construction."""

from __future__ import annotations

import numpy as np

from fields.fit.fresh import fourier_sigma_maker, fresh_select, spectrum, wasserstein_1d
from fields.fit.image import pixel_coordinates

SPEC = {"encoding": {"type": "fourier", "n_frequencies": 128, "sigma": 1.0},
        "decoder": {"type": "mlp", "hidden": 64, "depth": 2}}


def band_limited_target(sigma: float, size: int = 96) -> np.ndarray:
    """A band-limited signal whose right sigma is known: a Fourier-feature network with that sigma,
    drawn with a seed none of FreSh's probes uses."""
    from fields.fit.fresh import untrained_output

    field = fourier_sigma_maker(SPEC, 2, 3)(sigma, 1000)
    return untrained_output(field, pixel_coordinates(size, size), (size, size))


def test_spectrum_and_wasserstein_basics():
    size = 64
    xy = pixel_coordinates(size, size).numpy()
    wave = np.sin(2 * np.pi * 5 * xy[:, :1]).reshape(size, size, 1)
    s = spectrum(wave, bins=32)
    assert s.argmax() == 4  # frequency 5 -> bin 5, index 4 once DC is dropped
    assert wasserstein_1d(s, s) == 0.0
    shifted = np.roll(s, 3)
    assert abs(wasserstein_1d(s, shifted) - 3.0) < 1e-4  # float32 FFT leakage of ~1e-7 per bin


def test_fresh_picks_the_sigma_of_the_target():
    make = fourier_sigma_maker(SPEC, 2, 3)
    for true_sigma in (4.0, 12.0):
        choice = fresh_select(band_limited_target(true_sigma), [1.0, 4.0, 12.0, 36.0], make, inits=5)
        assert choice.value == true_sigma, choice.distances
