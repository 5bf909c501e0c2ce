"""EER / minDCF against an independent computation (scikit-learn's roc_curve), point by point."""
import numpy as np
import pytest
from sklearn.metrics import roc_curve

from eval import metrics as M


def sk_rates(scores, labels):
    """(p_miss, p_fa) at every distinct threshold, from scikit-learn (spoof = positive, score >= t = spoof)."""
    fpr, tpr, thr = roc_curve(labels, scores, pos_label=1, drop_intermediate=False)
    return 1.0 - tpr, fpr


def brute_rates(scores, labels):
    """Rates by evaluating the decision at every candidate threshold directly (plus one above the maximum)."""
    s, y = np.asarray(scores, float), np.asarray(labels)
    cands = np.concatenate([np.unique(s), [np.inf]])
    p_miss = np.array([np.mean(s[y == 1] < t) for t in cands])
    p_fa = np.array([np.mean(s[y == 0] >= t) for t in cands])
    return p_miss, p_fa


def cases():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    y[:2] = [0, 1]
    s = rng.normal(size=400) + 1.2 * y
    yield "random", s, y
    yield "separable", np.r_[rng.normal(size=50) - 5, rng.normal(size=50) + 5], np.r_[np.zeros(50), np.ones(50)]
    yield "all_tied", np.zeros(30), np.r_[np.zeros(12), np.ones(18)]
    yield "quantised", np.round(s, 1), y
    yield "coarse", np.round(s), y
    yield "tiny_2", np.array([0.3, 0.1]), np.array([0, 1])
    yield "tiny_3", np.array([0.2, 0.2, 0.9]), np.array([0, 1, 1])
    yield "float32_ties", (rng.normal(size=300).astype(np.float32) * 1e-8 + 1).astype(np.float32), rng.integers(0, 2, 300) | np.r_[1, np.zeros(299, int)]


CASES = list(cases())


@pytest.mark.parametrize("name,scores,labels", CASES, ids=[c[0] for c in CASES])
def test_det_curve_matches_sklearn_point_by_point(name, scores, labels):
    p_miss, p_fa, thr = M.det_curve(scores, labels)
    ref_miss, ref_fa = sk_rates(scores, labels)
    ours = sorted(zip(np.round(p_miss, 12), np.round(p_fa, 12)))
    ref = sorted(zip(np.round(ref_miss, 12), np.round(ref_fa, 12)))
    assert ours == ref
    # the thresholds reproduce the rates they claim
    s, y = np.asarray(scores, float), np.asarray(labels)
    for pm, pf, t in zip(p_miss, p_fa, thr):
        assert np.mean(s[y == 1] < t) == pytest.approx(pm)
        assert np.mean(s[y == 0] >= t) == pytest.approx(pf)


@pytest.mark.parametrize("name,scores,labels", CASES, ids=[c[0] for c in CASES])
def test_eer_and_min_dcf_match_independent_computation(name, scores, labels):
    e, t = M.eer(scores, labels)
    for ref_miss, ref_fa in (sk_rates(scores, labels), brute_rates(scores, labels)):
        gap = np.abs(ref_miss - ref_fa)
        best = gap == gap.min()
        assert any(e == pytest.approx(v, abs=1e-12) for v in (ref_miss[best] + ref_fa[best]) / 2), name
        for p_spoof, c_miss, c_fa in ((0.05, 1.0, 10.0), (0.5, 1.0, 1.0), (0.01, 10.0, 1.0)):
            dcf = c_miss * p_spoof * ref_miss + c_fa * (1 - p_spoof) * ref_fa
            ref = dcf.min() / min(c_miss * p_spoof, c_fa * (1 - p_spoof))
            assert M.min_dcf(scores, labels, p_spoof, c_miss, c_fa) == pytest.approx(ref, abs=1e-12)
    # the EER threshold really is the operating point reported
    s, y = np.asarray(scores, float), np.asarray(labels)
    pm, pf = np.mean(s[y == 1] < t), np.mean(s[y == 0] >= t)
    assert e == pytest.approx((pm + pf) / 2)
    assert 0.0 <= e <= 1.0


def test_known_values():
    assert M.eer(np.r_[np.zeros(5), np.ones(5)], np.r_[np.zeros(5), np.ones(5)])[0] == 0.0
    assert M.min_dcf(np.r_[np.zeros(5), np.ones(5)], np.r_[np.zeros(5), np.ones(5)]) == 0.0
    # all tied: no threshold separates anything -> EER 50 %, minDCF 1 (the trivial system)
    assert M.eer(np.ones(10), np.r_[np.zeros(5), np.ones(5)])[0] == 0.5
    assert M.min_dcf(np.ones(10), np.r_[np.zeros(5), np.ones(5)]) == pytest.approx(1.0)


def test_flipped_polarity_is_not_a_good_system():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 1000)
    s = rng.normal(size=1000) + 2.0 * y
    good, _ = M.eer(s, y)
    flipped, _ = M.eer(-s, y)
    assert good < 0.2 and flipped > 0.8
    assert flipped == pytest.approx(1 - good, abs=0.01)


@pytest.mark.parametrize("fn", [M.eer, M.min_dcf, M.det_curve, M.accuracy_at_eer, M.cllr, M.act_dcf])
def test_single_class_is_a_clear_error(fn):
    with pytest.raises(ValueError, match="both classes"):
        fn(np.arange(5.0), np.ones(5))
    with pytest.raises(ValueError, match="both classes"):
        fn(np.arange(5.0), np.zeros(5))


def test_summarize_block():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300)
    s = rng.normal(size=300) + 1.5 * y
    b = M.summarize(s, y, threshold=0.5, n_boot=200)
    assert set(b) == {"eer", "eer_threshold", "eer_ci95", "accuracy", "accuracy_at_eer", "min_dcf", "n_bonafide",
                      "n_spoof"}
    for k in ("eer", "accuracy", "accuracy_at_eer", "min_dcf"):
        assert 0.0 <= b[k] <= 1.0, k
    assert b["accuracy"] == pytest.approx(np.mean((s >= 0.5) == y))
    assert b["accuracy_at_eer"] == pytest.approx(np.mean((s >= b["eer_threshold"]) == y))
    lo, hi = b["eer_ci95"]
    assert 0.0 <= lo <= b["eer"] <= hi <= 1.0 and hi - lo < 0.25
    assert (b["n_bonafide"], b["n_spoof"]) == (int((y == 0).sum()), int(y.sum()))
    assert M.summarize(s, y, n_boot=200)["eer_ci95"] == b["eer_ci95"]  # deterministic under the seed
    with pytest.raises(ValueError, match="both classes"):
        M.summarize(s[y == 1], y[y == 1])


def test_bootstrap_ci_matches_naive_resampling():
    """The sort-once bootstrap gives the same distribution as resampling and recomputing the EER."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(size=200) + y, 1)
    rs = np.random.default_rng(9)
    reps = []
    sp, bo = s[y == 1], s[y == 0]
    for _ in range(1000):
        r = np.r_[rs.choice(sp, sp.size), rs.choice(bo, bo.size)]
        reps.append(M.eer(r, np.r_[np.ones(sp.size), np.zeros(bo.size)])[0])
    lo, hi = M.eer_ci(s, y, n_boot=1000)
    ref_lo, ref_hi = np.quantile(reps, [0.025, 0.975])
    assert lo == pytest.approx(ref_lo, abs=0.02) and hi == pytest.approx(ref_hi, abs=0.02)


def test_cllr_and_act_dcf():
    y = np.r_[np.zeros(50), np.ones(50)]
    assert M.cllr(np.zeros(100), y) == pytest.approx(1.0)  # uninformative
    assert M.cllr(np.where(y == 1, 30.0, -30.0), y) < 1e-9  # perfect and confident
    assert M.cllr(np.where(y == 1, -30.0, 30.0), y) > 10  # confidently wrong is worse than useless
    rng = np.random.default_rng(4)
    llr = rng.normal(size=100) + 3 * (y - 0.5)
    assert M.act_dcf(llr, y) >= M.min_dcf(llr, y) - 1e-12
    t = M.bayes_threshold(0.05, 1.0, 10.0)
    assert t == pytest.approx(np.log(190))
    ref = (0.05 * np.mean(llr[y == 1] < t) + 10 * 0.95 * np.mean(llr[y == 0] >= t)) / 0.05
    assert M.act_dcf(llr, y) == pytest.approx(ref)


def test_group_without_one_class_gets_counts_and_nulls_not_nan():
    import json

    from eval.report import compute_metrics

    rows = [{"key": f"k{i}", "score": float(i % 7) - 3, "label": "spoof" if i % 2 else "bonafide",
             "attack_type": "digital", "corpus": "mix", "language": "en" if i < 20 else None} for i in range(20)]
    rows += [{"key": f"m{i}", "score": -1.0 + 0.1 * i, "label": "bonafide", "attack_type": "digital",
              "corpus": "mailabs", "language": "de"} for i in range(5)]
    m = compute_metrics(rows, 0.0, None, {"bootstrap": 20})
    de = m["by_language"]["de"]
    assert de["eer"] is None and de["min_dcf"] is None and (de["n_bonafide"], de["n_spoof"]) == (5, 0)
    assert "no spoof trials" in de["note"] and 0.0 <= de["accuracy"] <= 1.0
    assert m["by_attack_type"]["replay"]["n_bonafide"] == 0 and m["by_attack_type"]["replay"]["note"] == "no trials"
    json.dumps(m, allow_nan=False)  # valid JSON, no NaN
