"""Evaluation metrics: utility, fidelity, coverage, diversity, privacy, calibration.

Each metric is checked on cases whose answer is known: identical real and synthetic data
scores at (or near) the best value, clearly shifted data scores worse, copies of training rows
are flagged by the privacy metrics.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from synthloop.data import ColumnSchema, TableSchema
from synthloop.errors import DataError, SpecError
from synthloop.evals.calibration import (
    CALIBRATION_METRICS,
    ConstraintViolationRate,
    ExpectedCalibrationError,
)
from synthloop.evals.classification import F1
from synthloop.evals.coverage import COVERAGE_METRICS, ManifoldPrecision, ManifoldRecall
from synthloop.evals.diversity import DIVERSITY_METRICS, MeanPairwiseCosine, SelfBLEU
from synthloop.evals.features import feature_matrices
from synthloop.evals.fidelity import (
    FIDELITY_METRICS,
    ColumnShapes,
    CorrelationSimilarity,
    DetectionScore,
    KSComplement,
    TVComplement,
)
from synthloop.evals.privacy import DCR, NNDR, PRIVACY_METRICS, MembershipInference
from synthloop.evals.utility import (
    TRTR,
    TSTR,
    UTILITY_METRICS,
    HoldoutLift,
    difference_standard_error,
)
from synthloop.tools.training import BUILTIN_MODELS, TabularModel
from tests.support import cancer_frame

ALL_METRICS = [
    *UTILITY_METRICS.values(), *FIDELITY_METRICS.values(), *COVERAGE_METRICS.values(),
    *DIVERSITY_METRICS.values(), *PRIVACY_METRICS.values(), *CALIBRATION_METRICS.values(),
]


def gaussian(n: int, seed: int, shift: float = 0.0, dims: int = 4) -> np.ndarray:
    """Correlated Gaussian rows (unit variances, correlation 0.6). ``shift`` moves the columns
    by +shift, -shift, +shift, ... standard deviations: across the correlation, so the
    shifted rows leave the real data's region instead of sliding along it."""
    rng = np.random.default_rng(seed)
    cov = 0.6 * np.ones((dims, dims)) + 0.4 * np.eye(dims)
    # Cholesky, not the default SVD: cov has a repeated eigenvalue, so the SVD's rotation (and
    # the sample) would depend on the machine's BLAS
    return rng.multivariate_normal(shift * (-1.0) ** np.arange(dims), cov, size=n,
                                   method="cholesky")


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    """Real rows with a categorical column added, so the schema's one-hot path is exercised."""
    df = cancer_frame()
    df["size"] = pd.cut(df["mean_area"], [0, 500, 900, np.inf],
                        labels=["small", "medium", "large"]).astype(str)
    return df


@pytest.fixture(scope="module")
def schema(cancer) -> TableSchema:
    cols = [ColumnSchema(name=c, type="float", min=float(cancer[c].min()), max=float(cancer[c].max()))
            for c in cancer.columns if c not in ("diagnosis", "size")]
    cols.append(ColumnSchema(name="size", type="category", categories=["large", "medium", "small"]))
    return TableSchema(target="diagnosis", classes=["benign", "malignant"],
                       positive_class="malignant", columns=cols)


class TestMetricContract:
    @pytest.mark.parametrize("metric", ALL_METRICS, ids=lambda m: m.__name__)
    def test_every_metric_declares_name_goal_range_and_a_docstring(self, metric):
        # Assert
        assert isinstance(metric.name, str) and metric.name
        assert metric.goal in ("maximize", "minimize")
        assert metric.min_value < metric.max_value
        assert callable(metric.compute)
        assert metric.__doc__ and len(metric.__doc__.split()) > 30

    def test_names_are_unique(self):
        names = [m.name for m in ALL_METRICS]

        assert len(names) == len(set(names))


class TestFeatureMatrices:
    def test_plain_arrays_are_scaled_so_distance_is_the_mean_column_difference(self):
        # Setup: column ranges 10 and 100
        real = np.array([[0.0, 0.0], [10.0, 100.0]])
        synthetic = np.array([[5.0, 0.0]])

        # Run
        X_real, X_syn = feature_matrices(real, synthetic)

        # Assert: half of column 1's range, nothing in column 2 -> mean difference 0.25
        assert np.abs(X_syn[0] - X_real[0]).sum() == pytest.approx(0.25)

    def test_schema_path_one_hot_encodes_categories(self, cancer, schema):
        X, = feature_matrices(cancer.iloc[:3], schema=schema)

        assert X.shape == (3, len(schema.columns) - 1 + 3)

    def test_text_columns_without_schema_are_refused(self, cancer):
        with pytest.raises(DataError, match="schema=TableSchema"):
            feature_matrices(cancer, cancer)

    def test_missing_values_in_plain_arrays_are_refused(self):
        with pytest.raises(DataError, match="missing values"):
            feature_matrices(np.array([[1.0], [np.nan]]))


class TestHoldoutLift:
    @pytest.fixture(scope="class")
    def holdout(self):
        rng = np.random.default_rng(0)
        y = np.where(rng.random(400) < 0.3, "pos", "neg")
        truth = (y == "pos").astype(float)
        weak = 0.3 * truth + 0.7 * rng.random(400)
        strong = 0.45 * truth + 0.55 * rng.random(400)
        as_proba = lambda p: np.c_[1 - p, p]  # noqa: E731
        return y, as_proba(weak), as_proba(strong)

    def test_a_better_model_has_positive_lift_and_a_ci_that_contains_it(self, holdout):
        # Setup
        y, weak, strong = holdout

        # Run
        out = HoldoutLift.compute(y, weak, strong, ["neg", "pos"], "pos", metric="f1", n_boot=200)

        # Assert
        assert out["lift"] == pytest.approx(out["final"] - out["baseline"])
        assert out["final"] == pytest.approx(F1.compute(y, strong, ["neg", "pos"], "pos"))
        assert out["lift"] > 0.1
        assert 0 < out["ci_low"] <= out["lift"] <= out["ci_high"]

    def test_same_predictions_give_zero_lift_and_a_zero_width_ci(self, holdout):
        y, weak, _ = holdout

        out = HoldoutLift.compute(y, weak, weak.copy(), ["neg", "pos"], "pos", metric="roc_auc",
                                  n_boot=50)

        assert out["lift"] == out["ci_low"] == out["ci_high"] == 0.0

    def test_swapping_the_models_mirrors_the_interval(self, holdout):
        y, weak, strong = holdout

        up = HoldoutLift.compute(y, weak, strong, ["neg", "pos"], "pos", metric="pr_auc",
                                 n_boot=100, seed=3)
        down = HoldoutLift.compute(y, strong, weak, ["neg", "pos"], "pos", metric="pr_auc",
                                   n_boot=100, seed=3)

        assert down["lift"] == pytest.approx(-up["lift"])
        assert down["ci_low"] == pytest.approx(-up["ci_high"])

    def test_unknown_metric_names_the_allowed_ones(self, holdout):
        y, weak, strong = holdout

        with pytest.raises(SpecError, match="'metric' parameter of HoldoutLift must be one of"):
            HoldoutLift.compute(y, weak, strong, ["neg", "pos"], "pos", metric="f2")

    def test_probabilities_of_the_wrong_shape_are_refused(self, holdout):
        y, weak, strong = holdout

        with pytest.raises(DataError, match="proba_final must have shape"):
            HoldoutLift.compute(y, weak, strong[:10], ["neg", "pos"], "pos", metric="f1")


class TestTrainTestReal:
    @pytest.fixture(scope="class")
    def split(self, cancer):
        return cancer.iloc[:200], cancer.iloc[200:]

    @pytest.fixture(scope="class")
    def factory(self, schema):
        return lambda: TabularModel(BUILTIN_MODELS["logistic_regression"](0), schema)

    def test_tstr_on_a_copy_of_the_real_train_rows_equals_trtr(self, split, factory, schema):
        # Setup
        train, test = split

        # Run
        trtr = TRTR.compute(train, test, factory, schema.classes, "malignant")
        tstr = TSTR.compute(train.copy(), test, factory, schema.classes, "malignant")

        # Assert: the cancer data is easy, and identical training rows give identical scores
        assert trtr > 0.95
        assert tstr == pytest.approx(trtr)

    def test_synthetic_rows_with_flipped_labels_score_far_below_trtr(self, split, factory, schema):
        train, test = split
        flipped = train.assign(diagnosis=np.where(train.diagnosis == "benign", "malignant",
                                                  "benign"))

        tstr = TSTR.compute(flipped, test, factory, schema.classes, "malignant")

        assert tstr < 0.1

    def test_sklearn_estimators_with_labels_and_any_class_order(self, split):
        # Setup: a plain sklearn classifier; classes given in non-sorted order
        train, test = split
        X, Xt = train.drop(columns=["diagnosis", "size"]), test.drop(columns=["diagnosis", "size"])

        # Run
        score = TRTR.compute(X, Xt, lambda: make_pipeline(StandardScaler(), LogisticRegression()),
                             ["malignant", "benign"], "malignant", metric="f1",
                             y_train=train.diagnosis, y_test=test.diagnosis)

        # Assert: a misaligned probability column would give an F1 near 0
        assert score > 0.8

    def test_test_labels_are_required(self, split):
        train, test = split
        X = train.drop(columns=["diagnosis", "size"])

        with pytest.raises(DataError, match="needs y_test"):
            TSTR.compute(X, X, lambda: LogisticRegression(), ["benign", "malignant"],
                         "malignant", y_train=train.diagnosis)


class TestColumnShapes:
    def test_ks_complement_is_one_for_the_same_sample_and_zero_for_disjoint_ones(self):
        x = np.arange(100.0)

        assert KSComplement.compute(x, x[::-1]) == 1.0
        assert KSComplement.compute(x, x + 1000) == 0.0

    def test_tv_complement_of_category_shares(self):
        real = ["a"] * 50 + ["b"] * 50
        half_moved = ["a"] * 100

        assert TVComplement.compute(real, list(reversed(real))) == 1.0
        assert TVComplement.compute(real, half_moved) == pytest.approx(0.5)
        assert TVComplement.compute(real, ["c"] * 10) == 0.0

    def test_identical_frames_score_one_and_shifted_columns_score_lower(self, cancer, schema):
        # Setup: shift one numeric column, change one category's share
        real = cancer.drop(columns="diagnosis")
        shifted = real.assign(mean_radius=real.mean_radius + real.mean_radius.std(),
                              size="small")

        # Run
        same = ColumnShapes.compute(real, real.sample(frac=1, random_state=0), schema)
        parts = ColumnShapes.compute_breakdown(real, shifted, schema)

        # Assert
        assert same == pytest.approx(1.0)
        assert parts["mean_radius"] < 0.7
        assert parts["size"] < 0.6
        assert parts["mean_texture"] == 1.0
        assert ColumnShapes.compute(real, shifted, schema) == pytest.approx(np.mean(list(parts.values())))


class TestCorrelationSimilarity:
    def test_same_correlations_score_one_and_reversed_ones_near_zero(self):
        # Setup
        rng = np.random.default_rng(0)
        x = rng.normal(size=300)
        real = pd.DataFrame({"x": x, "y": x + 0.05 * rng.normal(size=300)})
        reversed_ = pd.DataFrame({"x": x, "y": -x + 0.05 * rng.normal(size=300)})

        # Run / Assert
        assert CorrelationSimilarity.compute(real, real.copy()) == pytest.approx(1.0)
        assert CorrelationSimilarity.compute(real, reversed_) < 0.02

    def test_no_numeric_pair_gives_nan(self):
        df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})

        assert np.isnan(CorrelationSimilarity.compute(df, df))


class TestDetection:
    @pytest.fixture(scope="class")
    def real(self):
        return gaussian(250, seed=0)

    def test_a_fresh_sample_of_the_same_distribution_is_hard_to_detect(self, real):
        assert DetectionScore.compute(real, gaussian(250, seed=1)) > 0.7

    def test_a_shifted_sample_is_detected(self, real):
        assert DetectionScore.compute(real, gaussian(250, seed=1, shift=1.0)) < 0.3

    def test_copies_count_as_indistinguishable_though_the_raw_auc_is_below_chance(self, real):
        # Setup
        real = real[:120]

        # Run
        auc = DetectionScore.auc(real, real.copy())

        # Assert: a copy's real twin sits in the other folds with the other label
        assert auc < 0.5
        assert DetectionScore.compute(real, real.copy()) == 1.0


class TestCoverage:
    @pytest.fixture(scope="class")
    def real(self):
        return gaussian(300, seed=0)

    def test_identical_data_has_full_precision_and_recall(self, real):
        assert ManifoldPrecision.compute(real, real.copy()) == 1.0
        assert ManifoldRecall.compute(real, real.copy()) == 1.0

    def test_a_fresh_sample_scores_high(self, real):
        fresh = gaussian(300, seed=1)

        assert ManifoldPrecision.compute(real, fresh) > 0.8
        assert ManifoldRecall.compute(real, fresh) > 0.8

    def test_shifted_data_loses_precision_and_recall(self, real):
        shifted = gaussian(300, seed=1, shift=3.0)

        assert ManifoldPrecision.compute(real, shifted) < 0.3
        assert ManifoldRecall.compute(real, shifted) < 0.3

    def test_mode_collapse_keeps_precision_but_loses_recall(self, real):
        # Setup: five real rows repeated
        collapsed = np.repeat(real[:5], 40, axis=0)

        # Assert
        assert ManifoldPrecision.compute(real, collapsed) == 1.0
        assert ManifoldRecall.compute(real, collapsed) < 0.1

    def test_schema_frames_work_too(self, cancer, schema):
        assert ManifoldRecall.compute(cancer, cancer.copy(), schema=schema) == 1.0


class TestSelfBLEU:
    TEXTS = ["the cat sat on the mat today", "the cat sat on the rug today",
             "the dog sat on the mat", "a cat sat on the mat yesterday, and then the cat slept",
             "stock prices fell", "the the the the", "cat",
             "a recipe for lemon cake needs eggs and a cat"]

    def test_identical_texts_score_one(self):
        assert SelfBLEU.compute(["The loan was repaid early."] * 4) == pytest.approx(1.0)

    def test_unrelated_texts_score_low_and_paraphrases_in_between(self):
        # Setup
        unrelated = ["the cat sat on the mat today", "stock prices fell sharply in march",
                     "a recipe for lemon cake needs eggs", "quantum computers use qubits"]
        paraphrases = ["the cat sat on the mat today", "the cat sat on the rug today",
                       "the dog sat on the mat today", "a cat sat on the mat yesterday"]

        # Run
        low, mid = SelfBLEU.compute(unrelated), SelfBLEU.compute(paraphrases)

        # Assert
        assert low < 0.05
        assert 0.5 < mid < 1.0

    def test_matches_the_reference_implementation(self):
        # Values from nltk's sentence_bleu (SmoothingFunction().method1, uniform weights, the
        # other texts as references), recorded once; nltk is not a dependency.
        out = SelfBLEU.compute_breakdown(self.TEXTS)

        assert out["self_bleu_2"] == pytest.approx(0.3970654305286756, abs=1e-12)
        assert out["self_bleu_3"] == pytest.approx(0.3428112691803615, abs=1e-12)
        assert out["self_bleu_4"] == pytest.approx(0.3085115413634151, abs=1e-12)

    def test_higher_orders_are_stricter(self):
        out = SelfBLEU.compute_breakdown(self.TEXTS)

        assert out["self_bleu_2"] > out["self_bleu_3"] > out["self_bleu_4"]

    def test_bad_order_and_too_few_texts(self):
        with pytest.raises(SpecError, match="'order' parameter of SelfBLEU must be one of"):
            SelfBLEU.compute(self.TEXTS, order=5)
        with pytest.raises(DataError, match="at least two texts"):
            SelfBLEU.compute(["alone"])


class TestMeanPairwiseCosine:
    def test_identical_vectors_score_one_and_orthogonal_ones_zero(self):
        assert MeanPairwiseCosine.compute(np.tile([1.0, 2.0, 3.0], (5, 1))) == pytest.approx(1.0)
        assert MeanPairwiseCosine.compute(np.eye(6)) == pytest.approx(0.0)

    def test_matches_the_brute_force_mean(self):
        # Setup
        E = np.random.default_rng(0).normal(size=(30, 8))
        U = E / np.linalg.norm(E, axis=1, keepdims=True)
        S = U @ U.T

        # Assert
        assert MeanPairwiseCosine.compute(E) == pytest.approx(S[~np.eye(30, dtype=bool)].mean())

    def test_zero_vectors_are_refused(self):
        with pytest.raises(DataError, match="all zeros"):
            MeanPairwiseCosine.compute(np.zeros((3, 4)))


class TestPrivacy:
    @pytest.fixture(scope="class")
    def data(self):
        """Real train and holdout, and a fresh sample of the same distribution."""
        return gaussian(300, seed=0), gaussian(300, seed=1), gaussian(300, seed=2)

    def test_dcr_flags_copies_of_training_rows(self, data):
        # Setup
        train, holdout, _ = data

        # Run
        out = DCR.compute(train, train[:150].copy(), holdout)

        # Assert
        assert out["synthetic_median"] == 0.0 < out["holdout_median"]
        assert out["share_closer"] == 1.0
        assert out["exact_copies"] == 1.0

    def test_dcr_of_a_fresh_sample_looks_like_the_holdout(self, data):
        train, holdout, fresh = data

        out = DCR.compute(train, fresh, holdout)

        assert out["share_closer"] < 0.15
        assert out["exact_copies"] == 0.0
        assert 0.75 < out["synthetic_median"] / out["holdout_median"] < 1.33

    def test_dcr_with_a_schema_flags_copied_frames(self, cancer, schema):
        out = DCR.compute(cancer.iloc[:200], cancer.iloc[:50], cancer.iloc[200:], schema=schema)

        assert out["share_closer"] == 1.0

    def test_nndr_is_zero_for_copies_low_for_near_copies_and_high_for_new_rows(self, data):
        # Setup
        train, _, fresh = data
        near = train + np.random.default_rng(5).normal(scale=0.01, size=train.shape)

        # Assert
        assert NNDR.compute(train, train.copy()) == 0.0
        assert NNDR.compute(train, near) < 0.2
        assert NNDR.compute(train, fresh) > 0.6

    def test_membership_inference_sees_copies_and_not_fresh_samples(self, data):
        train, holdout, fresh = data

        leaky = MembershipInference.compute(train, train.copy(), holdout)
        safe = MembershipInference.compute(train, fresh, holdout)

        assert leaky > 0.95
        assert abs(safe - 0.5) < 0.1


class TestCalibration:
    def test_ece_of_calibrated_probabilities_is_near_zero(self):
        # Setup: labels drawn with exactly the predicted probability
        rng = np.random.default_rng(0)
        p = rng.random(20000)
        y = np.where(rng.random(20000) < p, "pos", "neg")

        # Run
        calibrated = ExpectedCalibrationError.compute(y, np.c_[1 - p, p], ["neg", "pos"], "pos")
        overconfident = ExpectedCalibrationError.compute(y, np.c_[1 - p ** 3, p ** 3],
                                                         ["neg", "pos"], "pos")

        # Assert
        assert calibrated < 0.02
        assert overconfident > 0.15

    def test_ece_by_hand(self):
        # Setup: bin [0.1, 0.2) holds 0.1, 0.1 with one positive; bin [0.9, 1] holds 0.9 and
        # 1.0, both positive -> 0.5 * |0.1 - 0.5| + 0.5 * |0.95 - 1| = 0.225
        p = np.array([0.1, 0.1, 0.9, 1.0])
        y = ["neg", "pos", "pos", "pos"]

        assert ExpectedCalibrationError.compute(y, np.c_[1 - p, p], ["neg", "pos"], "pos") == \
            pytest.approx(0.225)

    def test_constraint_violation_rate_counts_rows_failing_any_rule(self):
        # Setup: row 0 fails the first rule, row 2 both, row 3 has a null and passes
        rows = pd.DataFrame({"price": [10.0, 80.0, -5.0, None],
                             "category": ["Electronics", "Electronics", "Electronics", "Books"]})
        rules = ['price > 50 if category == "Electronics"', "price >= 0"]

        # Run
        rate = ConstraintViolationRate.compute(rows, rules)
        parts = ConstraintViolationRate.compute_breakdown(rows, rules)

        # Assert
        assert rate == pytest.approx(0.5)
        assert parts == {rules[0]: 0.5, rules[1]: 0.25}
        assert np.isnan(ConstraintViolationRate.compute(rows.iloc[:0], rules))


class TestDifferenceStandardError:
    @staticmethod
    def _one_flip(n_pos: int, n_neg: int):
        # two models that agree everywhere except on one positive row
        y = np.array(["yes"] * n_pos + ["no"] * n_neg)
        a = np.column_stack([y == "no", y == "yes"]).astype(float)
        b = a.copy()
        b[0] = [1.0, 0.0]
        return y, a, b

    def test_identical_models_have_no_spread(self):
        y, a, _ = self._one_flip(20, 80)
        assert difference_standard_error(y, a, a, ["no", "yes"], "yes", "f1") == 0.0

    def test_one_flip_is_noisier_on_a_small_split(self):
        small = difference_standard_error(*self._one_flip(20, 80), ["no", "yes"], "yes", "f1")
        large = difference_standard_error(*self._one_flip(200, 800), ["no", "yes"], "yes", "f1")
        assert 0 < large < small
        # one positive of 20 moves F1 by about 0.026; the bootstrap spread is of that order
        assert 0.005 < small < 0.05


class TestMacroF1:
    def test_matches_scikit_learn(self):
        # Setup: random labellings, with labels missing from either side
        from sklearn.metrics import f1_score

        from synthloop.evals.classification import macro_f1

        rng = np.random.default_rng(0)
        for _ in range(300):
            k, n = int(rng.integers(1, 5)), int(rng.integers(1, 40))
            y = rng.integers(0, k, n).astype(str)
            pred = rng.integers(0, k + 1, n).astype(str)

            # Run / Assert
            assert macro_f1(y, pred) == pytest.approx(
                f1_score(y, pred, average="macro", zero_division=0), abs=1e-12)
