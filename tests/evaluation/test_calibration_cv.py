"""The held-out calibration check's logistic fit recovers known coefficients."""
import numpy as np

from evaluation.calibration_cv import fit_logistic


def test_fit_logistic_recovers_the_generating_weights():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 2))
    p = 1 / (1 + np.exp(-(-0.5 + 2.0 * x[:, 0] - 1.0 * x[:, 1])))
    y = (rng.random(4000) < p).astype(float)
    w = fit_logistic(x, y)
    assert np.allclose(w, [-0.5, 2.0, -1.0], atol=0.2)
    one_class = fit_logistic(x[:50], np.ones(50))  # a fold with no negatives still gives finite numbers
    assert np.isfinite(one_class).all()
