"""Metrics agree with scikit-learn on known inputs; plots and tables render."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from sklearn import metrics as skm

from emolib import metrics as M

Y = np.array([0, 0, 1, 1, 2, 2, 2, 0])
P = np.array([
    [0.7, 0.2, 0.1], [0.4, 0.5, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4],
    [0.1, 0.1, 0.8], [0.2, 0.2, 0.6], [0.5, 0.1, 0.4], [0.6, 0.3, 0.1],
])
CLASSES = ("a", "b", "c")


def test_accuracy_and_auc_match_sklearn():
    pred = P.argmax(1)
    assert M.accuracy(Y, pred) == pytest.approx(5 / 8)
    assert M.roc_auc(Y, P) == pytest.approx(skm.roc_auc_score(Y, P, multi_class="ovr", average="macro"))


def test_auc_with_a_missing_class_uses_the_present_ones():
    y = np.array([0, 0, 1, 1])
    p = np.array([[0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.4, 0.5, 0.1]])
    assert M.roc_auc(y, p) == pytest.approx(1.0)
    assert np.isnan(M.roc_auc(np.zeros(3, int), p[:3]))


def test_report_and_confusion_match_sklearn():
    pred = P.argmax(1)
    r = M.classification_report(Y, pred, CLASSES)
    p, rec, f1, s = skm.precision_recall_fscore_support(Y, pred, zero_division=0)
    for i, c in enumerate(CLASSES):
        assert r[c]["precision"] == pytest.approx(p[i]) and r[c]["recall"] == pytest.approx(rec[i])
        assert r[c]["f1-score"] == pytest.approx(f1[i]) and r[c]["support"] == s[i]
    cm = M.confusion(Y, pred, 3)
    assert (cm == skm.confusion_matrix(Y, pred)).all()
    cmn = M.confusion(Y, pred, 3, normalize=True)
    assert np.allclose(cmn.sum(1), 1) and cmn[0, 0] == pytest.approx(2 / 3)


def test_format_report_has_the_thesis_columns():
    text = M.format_report(M.classification_report(Y, P.argmax(1), CLASSES))
    lines = text.splitlines()
    assert lines[0].split() == ["label", "precision", "recall", "f1-score", "support"]
    assert any(line.split()[0] == "accuracy" and line.split()[1] == "0.62" for line in lines)
    assert lines[-1].split()[:2] == ["weighted", "avg"]


def test_evaluate_probs_is_json_ready():
    import json

    out = M.evaluate_probs(Y, P, CLASSES)
    json.dumps(out)
    assert out["n"] == 8 and out["accuracy"] == pytest.approx(0.625)
    assert set(out["per_class"]["a"]) == {"precision", "recall", "f1-score", "support"}
    assert np.array(out["confusion"]).sum() == 8


def test_plots_and_comparison_table():
    history = [{"epoch": i, "train_loss": 1 / i, "val_loss": 1.2 / i, "train_acc": 0.1 * i, "val_acc": 0.09 * i,
                "lr": 1e-3 * 0.3 ** (i // 3)} for i in range(1, 7)]
    fig = M.plot_history(history, "x")
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2
    assert M.plot_lr(history).get_yscale() == "log"
    ax = M.plot_confusion(M.confusion(Y, P.argmax(1), 3), CLASSES, normalize=True)
    assert len(ax.texts) == 9
    table = M.comparison_table([{"model": "baseline", "source": "ours", "FER2013": 0.6123},
                                {"model": "baseline", "source": "thesis", "FER2013": 0.6085, "RAF-DB": None}])
    assert "| 61.23 |" in table and "| 60.85 |" in table and "–" in table


# --------------------------------------------------------------------------- hand-worked examples
#
# Four images of classes a, b, c; worked out on paper:
#   true  a a b c    predicted  b a b b   -> accuracy 2/4
#   confusion (rows true, columns predicted):  a: [1 1 0]   b: [0 1 0]   c: [0 1 0]
#   precision a 1/1, b 1/3, c 0 (no prediction: 0);  recall a 1/2, b 1/1, c 0/1
#   F1 a 2/3, b 1/2, c 0 -> macro F1 (2/3 + 1/2 + 0) / 3 = 7/18; weighted (2*2/3 + 1/2 + 0) / 4 = 11/24
HAND_Y = np.array([0, 0, 1, 2])
HAND_P = np.array([[0.3, 0.6, 0.1], [0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.5, 0.4]])


def test_confusion_rows_are_true_classes_columns_predictions():
    assert M.confusion(HAND_Y, HAND_P.argmax(1), 3).tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    assert M.confusion(HAND_Y, HAND_P.argmax(1), 3, normalize=True).tolist() == [[0.5, 0.5, 0], [0, 1, 0], [0, 1, 0]]
    out = M.evaluate_probs(HAND_Y, HAND_P, CLASSES)
    assert out["confusion"] == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    assert out["accuracy"] == 0.5 and out["n"] == 4


def test_evaluate_probs_per_class_and_macro_f1_by_hand():
    out = M.evaluate_probs(HAND_Y, HAND_P, CLASSES)
    pc = out["per_class"]
    assert pc["a"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1-score": 2 / 3, "support": 2})
    assert pc["b"] == pytest.approx({"precision": 1 / 3, "recall": 1.0, "f1-score": 0.5, "support": 1})
    assert pc["c"] == pytest.approx({"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 1})
    assert out["macro_f1"] == pytest.approx(7 / 18)
    report = M.classification_report(HAND_Y, HAND_P.argmax(1), CLASSES)
    assert report["weighted avg"]["f1-score"] == pytest.approx(11 / 24)


def test_auc_by_hand():
    # class a vs rest: scores of a's (0.3, 0.8) against the rest (0.2, 0.1): every pair ordered -> 1.0
    # class b vs rest: b's 0.7 against 0.6, 0.1, 0.5 -> 1.0;  class c: c's 0.4 against 0.1, 0.1, 0.1 -> 1.0
    assert M.roc_auc(HAND_Y, HAND_P) == pytest.approx(1.0)
    # lower the b image's own score to 0.05: below every other image's b score
    p = HAND_P.copy()
    p[2] = [0.2, 0.05, 0.75]
    # a: (0.3, 0.8) vs (0.2, 0.1) -> 1;  b: 0.05 vs (0.6, 0.1, 0.5) -> 0;  c: 0.4 vs (0.1, 0.1, 0.75) -> 2/3
    assert M.roc_auc(HAND_Y, p) == pytest.approx((1 + 0 + 2 / 3) / 3)
    assert M.evaluate_probs(HAND_Y, p, CLASSES)["auc"] == pytest.approx((1 + 0 + 2 / 3) / 3)


def test_format_report_rows_carry_each_class_numbers():
    text = M.format_report(M.classification_report(HAND_Y, HAND_P.argmax(1), CLASSES))
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[1:]}
    assert rows["a"] == ["1.00", "0.50", "0.67", "2"] and rows["b"] == ["0.33", "1.00", "0.50", "1"]
    assert rows["accuracy"] == ["0.50", "4"]
    assert rows["macro"] == ["avg", "0.44", "0.50", "0.39", "4"]


def test_plot_confusion_draws_the_matrix_it_is_given():
    import matplotlib.pyplot as plt

    cm = np.array([[5, 1, 0], [2, 3, 1], [0, 0, 4]])
    ax = M.plot_confusion(cm, CLASSES)
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true" and ax.get_title() == "confusion matrix"
    assert [t.get_text() for t in ax.get_xticklabels()] == list(CLASSES)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(CLASSES)
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in ax.texts}  # (row, column)
    assert {k: int(t.get_text()) for k, t in cells.items()} == {(i, j): int(cm[i, j]) for i in range(3) for j in range(3)}
    from matplotlib.colors import to_rgb

    def light(t):
        return sum(to_rgb(t.get_color())) / 3 > 0.8

    assert light(cells[(0, 0)]) and not light(cells[(0, 1)])  # dark cells, light text
    assert np.array_equal(ax.images[0].get_array(), cm)
    plt.close(ax.figure)
    ax = M.plot_confusion(cm, CLASSES, normalize=True, title="x")
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert cells[(1, 0)] == "0.33" and cells[(2, 2)] == "1.00" and ax.get_title() == "x"
    assert ax.images[0].get_clim() == (0, 1)
    plt.close(ax.figure)
    ax = M.plot_confusion(cm / cm.sum(1, keepdims=True), CLASSES, normalize=True)  # already normalised: kept
    assert ax.get_title() == "normalized confusion matrix" and ax.texts[1].get_text() == "0.17"
    plt.close(ax.figure)


def test_plot_history_and_lr_draw_the_history():
    import matplotlib.pyplot as plt

    history = [{"epoch": i, "train_loss": 1 / i, "val_loss": 1.2 / i, "train_acc": 0.1 * i, "val_acc": 0.09 * i,
                "lr": 1e-3 * 0.3 ** (i // 3)} for i in range(1, 5)]
    fig = M.plot_history(history, "run")
    loss, acc = fig.axes
    assert [list(line.get_ydata()) for line in loss.lines] == [[1 / i for i in range(1, 5)], [1.2 / i for i in range(1, 5)]]
    assert [list(line.get_ydata()) for line in acc.lines] == [[0.1 * i for i in range(1, 5)],
                                                             [0.09 * i for i in range(1, 5)]]
    assert list(loss.lines[0].get_xdata()) == [1, 2, 3, 4]
    assert [t.get_text() for t in loss.get_legend().get_texts()] == ["train", "validation"]
    assert loss.get_ylabel() == "loss" and acc.get_ylabel() == "accuracy" and acc.get_xlabel() == "epoch"
    assert fig._suptitle.get_text() == "run"
    plt.close(fig)
    ax = M.plot_lr(history)
    assert list(ax.lines[0].get_ydata()) == [h["lr"] for h in history] and ax.get_ylabel() == "learning rate"
    plt.close(ax.figure)


def test_comparison_table_formats_each_kind_of_cell():
    table = M.comparison_table([{"model": "a", "acc": 0.5, "params": 1668615, "time": 12.345, "note": None}],
                               columns=["model", "acc", "params", "time", "note"])
    lines = table.splitlines()
    assert lines[0] == "| model | acc | params | time | note |" and lines[1] == "|---|---|---|---|---|"
    assert lines[2] == "| a | 50.00 | 1,668,615 | 12.35 | – |"


def test_plot_details_that_carry_meaning():
    import matplotlib.pyplot as plt

    cm = np.array([[6, 3], [2, 4]])  # range 2-6: cells from its middle, 4, up get light text
    ax = M.plot_confusion(cm, ("a", "b"))
    from matplotlib.colors import to_rgb

    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): sum(to_rgb(t.get_color())) / 3 > 0.8
             for t in ax.texts}  # light text on the dark cells (scikit-learn: above the middle of the range)
    assert cells == {(0, 0): True, (0, 1): False, (1, 0): False, (1, 1): True}
    img = ax.images[0]
    assert img.get_clim() == (0, 6) and img.get_cmap().name == "Blues"  # counts start at 0, not at the minimum
    assert len(ax.figure.axes) == 2  # the colour bar
    assert [t.get_rotation() for t in ax.get_xticklabels()] == [45, 45]
    assert all(t.get_ha() == "right" for t in ax.get_xticklabels())
    plt.close(ax.figure)
    history = [{"epoch": e, "train_loss": 1.0, "val_loss": 1.0, "train_acc": 0.5, "val_acc": 0.5, "lr": 0.1 / e}
               for e in (3, 4, 5)]  # a resumed run: epochs do not start at 1
    fig = M.plot_history(history)
    assert all(list(line.get_xdata()) == [3, 4, 5] for a in fig.axes for line in a.lines)
    assert fig._suptitle is None  # no title given, none drawn
    plt.close(fig)
    ax = M.plot_lr(history)
    assert ax.get_xlabel() == "epoch" and ax.get_yscale() == "log"
    assert ax.lines[0].get_drawstyle() == "steps-post"  # the rate holds until the next epoch
    plt.close(ax.figure)


def test_format_report_puts_accuracy_before_the_averages():
    text = M.format_report(M.classification_report(HAND_Y, HAND_P.argmax(1), CLASSES))
    firsts = [line.split()[0] for line in text.splitlines()]
    assert firsts == ["label", "a", "b", "c", "accuracy", "macro", "weighted"]


def test_comparison_table_percentages_include_0_and_1():
    line = M.comparison_table([{"x": 0.0, "y": 1.0, "z": 1.5}]).splitlines()[2]
    assert line == "| 0.00 | 100.00 | 1.50 |"


def test_absent_classes_give_zeros_without_warnings():
    import warnings

    y, pred = np.array([0, 0, 1]), np.array([0, 1, 1])  # class 2: never true, never predicted
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # sklearn's UndefinedMetricWarning, numpy's 0/0: none of them
        r = M.classification_report(y, pred, CLASSES)
        cmn = M.confusion(y, pred, 3, normalize=True)
    assert r["c"] == {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0.0}
    assert cmn.tolist() == [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]


def test_per_class_auc_is_one_vs_rest_with_nan_for_absent_classes():
    per = M.roc_auc_per_class(HAND_Y, HAND_P)
    assert per.tolist() == pytest.approx([skm.roc_auc_score(HAND_Y == k, HAND_P[:, k]) for k in range(3)])
    y = np.array([0, 0, 1, 1])  # class 2 never true: no AUC for it, and the macro AUC skips it
    p = np.array([[0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.4, 0.5, 0.1]])
    per = M.roc_auc_per_class(y, p)
    assert per[:2].tolist() == [1.0, 1.0] and np.isnan(per[2])
    assert np.isnan(M.roc_auc_per_class(np.zeros(3, int), p[:3])).all()  # one class: nothing to rank against
    # the macro AUC over the present classes equals scikit-learn's where all classes are present
    assert M.roc_auc(Y, P) == pytest.approx(np.mean(M.roc_auc_per_class(Y, P)))


def test_confusion_normalisation_is_sklearns():
    pred = P.argmax(1)
    assert np.array_equal(M.confusion(Y, pred, 3, normalize=True), skm.confusion_matrix(Y, pred, normalize="true"))
    assert M.confusion(Y, pred, 3).dtype.kind == "i"  # counts stay integers


def test_format_report_shows_sklearns_numbers():
    # the same numbers as scikit-learn's own text report, row by row
    text = M.format_report(M.classification_report(Y, P.argmax(1), CLASSES))
    ours = [line.split() for line in text.splitlines()[1:]]
    theirs = [line.split() for line in skm.classification_report(Y, P.argmax(1), target_names=list(CLASSES),
                                                                  zero_division=0).splitlines()[1:] if line.strip()]
    assert ours == theirs


# --------------------------------------------------------------------------- from mutmut's survivors
#
# Each test below fails for a mutant that the tests above let through (results/mutation/metrics.json).

def test_evaluate_probs_keys_are_the_documented_ones():
    out = M.evaluate_probs(HAND_Y, HAND_P, CLASSES)
    assert set(out) == {"accuracy", "n", "auc", "macro_f1", "per_class", "confusion", "classes"}
    assert out["classes"] == list(CLASSES) and list(out["per_class"]) == list(CLASSES)


def test_per_class_auc_is_each_class_own_not_the_mean():
    p = HAND_P.copy()
    p[2] = [0.2, 0.05, 0.75]  # worked out in test_auc_by_hand: a 1, b 0, c 2/3
    assert M.roc_auc_per_class(HAND_Y, p).tolist() == pytest.approx([1.0, 0.0, 2 / 3])


def test_classes_without_auc_are_left_out_without_warnings():
    import warnings

    y = np.array([0, 0, 1, 1])  # class 2 never true; then a batch of one class only
    p = np.array([[0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.4, 0.5, 0.1]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn warns on a column with one class: none reaches it
        per = M.roc_auc_per_class(y, p)
        one = M.roc_auc_per_class(np.zeros(4, int), p)
    assert per[:2].tolist() == [1.0, 1.0] and np.isnan(per[2]) and np.isnan(one).all()


def test_plot_confusion_normalises_each_row_by_its_own_sum():
    import warnings

    import matplotlib.pyplot as plt

    cm = np.array([[2, 0, 0], [1, 1, 2], [0, 0, 0]])  # row sums 2, 4, 0; largest count 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the empty row is 0/0: shown as zeros, without a numpy warning
        ax = M.plot_confusion(cm, CLASSES, normalize=True)
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert cells == {(0, 0): "1.00", (0, 1): "0.00", (0, 2): "0.00", (1, 0): "0.25", (1, 1): "0.25",
                     (1, 2): "0.50", (2, 0): "0.00", (2, 1): "0.00", (2, 2): "0.00"}
    plt.close(ax.figure)
    ax = M.plot_confusion(np.array([[1, 0], [0, 1]]), ("a", "b"))  # counts of at most 1: the scale is 0..1
    assert ax.images[0].get_clim() == (0, 1)
    plt.close(ax.figure)


def test_plot_confusion_normalises_counts_even_when_every_count_is_one():
    # Rows [1, 1] and [0, 1] are counts: normalised they are halves; an already normalised matrix is kept.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from emolib.metrics import plot_confusion

    ax = plot_confusion([[1, 1], [0, 1]], ["a", "b"], normalize=True)
    np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), [[0.5, 0.5], [0.0, 1.0]])
    ax2 = plot_confusion([[0.25, 0.75], [0.0, 0.0]], ["a", "b"], normalize=True)
    np.testing.assert_allclose(np.asarray(ax2.images[0].get_array()), [[0.25, 0.75], [0.0, 0.0]])
    plt.close("all")
