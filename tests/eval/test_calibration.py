"""Logistic-regression calibration: raw logits -> LLRs that make actDCF / Cllr (and detect's threshold) meaningful."""
import json

import numpy as np
import pytest

from eval import metrics as M
from eval.calibration import (
    apply_calibration,
    calibration_from_model_dir,
    fit_calibration,
    score_threshold,
)


def toy(n, seed):
    """True LLRs of two unit-variance Gaussians (means -1.5 / +1.5), reported through a miscalibrated map."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)  # unbalanced, as validation sets are
    x = rng.normal(size=n) + np.where(y == 1, 1.5, -1.5)
    true_llr = 3.0 * x  # log N(x; 1.5, 1) / N(x; -1.5, 1)
    raw = 0.25 * true_llr - 2.0  # shrunk and shifted: llr = 4 * raw + 8
    return raw, true_llr, y


def test_calibration_improves_cllr_and_act_dcf_on_held_out_data():
    raw_val, _, y_val = toy(4000, 0)
    raw_test, true_test, y_test = toy(4000, 1)
    cal = fit_calibration(raw_val, y_val)
    llr = apply_calibration(raw_test, cal)
    assert cal["a"] == pytest.approx(4.0, rel=0.1) and cal["b"] == pytest.approx(8.0, rel=0.1)
    before, after, ideal = M.cllr(raw_test, y_test), M.cllr(llr, y_test), M.cllr(true_test, y_test)
    assert after < before and after == pytest.approx(ideal, abs=0.02)
    assert M.act_dcf(llr, y_test) < M.act_dcf(raw_test, y_test)
    # a monotone map leaves the discrimination (EER, minDCF) unchanged
    assert M.eer(llr, y_test)[0] == pytest.approx(M.eer(raw_test, y_test)[0])
    assert M.min_dcf(llr, y_test) == pytest.approx(M.min_dcf(raw_test, y_test))


def test_calibration_dict_is_json_and_gives_the_bayes_threshold():
    raw, _, y = toy(2000, 2)
    cal = fit_calibration(raw, y)
    assert json.loads(json.dumps(cal)) == cal
    assert cal["threshold_llr"] == 0.0  # default operating point: equal priors and costs
    t = score_threshold(cal)
    assert apply_calibration([t], cal)[0] == pytest.approx(0.0, abs=1e-9)
    assert score_threshold(None) == 0.0
    strict = fit_calibration(raw, y, p_spoof=0.05, c_miss=1.0, c_fa=10.0)
    assert strict["threshold_llr"] == pytest.approx(np.log(190))
    assert score_threshold(strict) > t


def test_saved_with_the_exported_model(tmp_path):
    from trainer.model import Detector, DetectorConfig

    raw, _, y = toy(500, 3)
    cal = fit_calibration(raw, y)
    Detector(DetectorConfig(backbone="tiny")).save_pretrained(tmp_path, extra={"calibration": cal})
    assert calibration_from_model_dir(tmp_path) == cal
    assert Detector.from_pretrained(tmp_path).export_meta["calibration"] == cal


def test_single_class_validation_scores_are_rejected():
    with pytest.raises(ValueError, match="both classes"):
        fit_calibration(np.arange(10.0), np.ones(10))


def test_perfectly_separated_validation_scores_give_a_finite_map():
    s = np.r_[np.linspace(-5, -1, 50), np.linspace(1, 5, 50)]
    y = np.r_[np.zeros(50), np.ones(50)]
    cal = fit_calibration(s, y)
    assert 0 < cal["a"] < 50 and np.isfinite(cal["b"])
    assert M.cllr(apply_calibration(s, cal), y) < 0.1
