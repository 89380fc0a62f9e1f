"""The shipped emotion models on the real data: held to their model cards, and served as they were evaluated.

Skipped with a reason when ``$EMOLIB_DATA/fer2013`` is absent. The gesture model's
check is in tests/test_shipped_gestures.py (it needs MediaPipe).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from emolib.data import EMOTIONS, FER2013
from emolib.metrics import evaluate_probs
from emolib.models import list_pretrained, load_model, model_card
from emolib.pipeline import EmotionPipeline
from emolib.train import predict
from emolib.transforms import eval_transform
from tests.conftest import needs_real

EMOTION_MODELS = ["baseline-fer2013", "emonet-fer2013", "vgg_cpu-fer2013", "vgg_large-fer2013"]


def _shipped(name: str):
    if name not in list_pretrained():
        pytest.skip(f"{name} is not shipped in this checkout")
    return load_model(name).eval(), model_card(name)


@pytest.fixture(scope="module")
def fer_test():
    return FER2013(needs_real("fer2013"), "test")


def _eval_set(ds, model):
    cfg = model.input_config
    return ds.with_transform(eval_transform(cfg.size, cfg.channels, cfg.mean, cfg.std))


@pytest.mark.slow  # 3,589 faces: about 10 s per model on 2 cores
@pytest.mark.realdata
@pytest.mark.parametrize("name", EMOTION_MODELS)
def test_shipped_model_scores_its_card_on_the_test_split(name, fer_test):
    model, card = _shipped(name)
    assert card["dataset"] == "fer2013" and tuple(model.classes) == EMOTIONS
    probs, targets = predict(model, _eval_set(fer_test, model), progress=False)
    got = evaluate_probs(targets.numpy(), probs.numpy(), model.classes)
    assert got["n"] == card["test"]["n"] == 3589
    assert abs(got["accuracy"] - card["test"]["accuracy"]) <= 0.01, (got["accuracy"], card["test"]["accuracy"])
    assert abs(got["macro_f1"] - card["test"]["macro_f1"]) <= 0.01
    # the card's confusion matrix: rows are true classes (their sums are the class counts)
    assert [sum(r) for r in card["test"]["confusion"]] == list(fer_test.class_counts.values())
    assert np.abs(np.array(got["confusion"]) - np.array(card["test"]["confusion"])).sum() <= 0.02 * 3589


def _picks(ds, per_class: int = 3) -> list[int]:
    """The first ``per_class`` test faces of every emotion: a fixed, varied handful."""
    return [i for k in range(len(EMOTIONS)) for i in torch.nonzero(ds.targets == k).flatten()[:per_class].tolist()]


@pytest.mark.realdata
def test_pipeline_input_of_a_real_face_is_the_evaluation_tensor(fer_test):
    # A 48x48 FER2013 face given to the pipeline as an RGB photo, its box the whole image, no
    # margin and no contrast step: the model must see exactly what the evaluation gave it.
    model, _ = _shipped("baseline-fer2013")
    pipe = EmotionPipeline(model, device="cpu", hands=False, contrast=None, margin=0.0, max_side=None)
    tf = eval_transform(48, 1, (0.5,), (0.5,))
    for i in _picks(fer_test):
        face = fer_test.images[i]
        rgb = Image.fromarray(face[0].numpy()).convert("RGB")
        got = pipe.preprocess(rgb, np.array([[0, 0, 48, 48]], np.float32))
        assert torch.allclose(got[0], tf(face), atol=1e-6), fer_test.paths[i]


@pytest.mark.realdata
def test_shipped_model_labels_real_faces_in_the_pipeline_as_in_its_evaluation(fer_test):
    model, _ = _shipped("baseline-fer2013")
    picks = _picks(fer_test)
    probs, _ = predict(model, _eval_set(fer_test.subset(picks), model), progress=False)
    pipe = EmotionPipeline("baseline-fer2013", device="cpu", hands=False, contrast=None, margin=0.0, max_side=None)
    batch = torch.cat([pipe.preprocess(Image.fromarray(fer_test.images[i][0].numpy()).convert("RGB"),
                                       np.array([[0, 0, 48, 48]], np.float32)) for i in picks])
    served = pipe.classify(batch)
    assert served.argmax(1).tolist() == probs.argmax(1).tolist()
    np.testing.assert_allclose(served, probs.numpy(), atol=1e-4)
    # and the labels are the model's, not one class for every face
    assert len(set(served.argmax(1).tolist())) >= 4


@pytest.mark.parametrize("channels, mean, std", [(1, (0.5,), (0.5,)), (3, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
def test_pipeline_input_is_the_evaluation_tensor_for_any_input_config(channels, mean, std):
    # The same check without the real data, for a gray and an RGB model: a crop already of the
    # model's size (no resampling) must reach the model as the evaluation transform gives it.
    from emolib.models import InputConfig
    from tests.conftest import pattern

    class Probe(torch.nn.Module):
        classes = ("a", "b")
        input_config = InputConfig(64, channels, mean, std)

        def forward(self, x):
            return x.flatten(1)[:, :2]

    rgb = pattern(64, "RGB", 110, seed=11)
    pipe = EmotionPipeline(Probe(), detector=object(), hands=False, contrast=None, margin=0.0, max_side=None)
    got = pipe.preprocess(Image.fromarray(rgb), np.array([[0, 0, 64, 64]], np.float32))[0]
    expected = eval_transform(64, channels, mean, std)(torch.from_numpy(rgb).permute(2, 0, 1).contiguous())
    tol = 1.01 / 255 / min(std) if channels == 1 else 1e-5  # gray: PIL rounds luma, torchvision truncates
    assert got.shape == expected.shape and (got - expected).abs().max() <= tol


@pytest.mark.parametrize("name", list_pretrained())
def test_every_shipped_card_is_written_by_the_one_card_writer(name):
    # the .md beside each checkpoint is its JSON card as emolib.cards renders it: face and gesture models alike
    from emolib.cards import card_markdown
    from emolib.models import CHECKPOINT_DIR

    card = model_card(name)
    assert (CHECKPOINT_DIR / f"{name}.md").read_text() == card_markdown(card)
    assert load_model(name).classes == tuple(card["classes"])  # one registry loads every shipped model


@pytest.mark.parametrize("name", list_pretrained())
def test_a_cards_multiply_adds_are_its_models_and_the_pipeline_defaults(name):
    # a card that records multiply-adds per face (the GPU teacher) counts them as the book's layer table does
    from emolib.book.tables import layer_summary
    from emolib.pipeline import DEFAULT_MODEL

    macs = model_card(name).get("multiply_adds")
    if macs is None:
        pytest.skip(f"{name}'s card records no multiply-adds")
    assert macs["pipeline_default"] == DEFAULT_MODEL
    assert macs["per_face"] == sum(r["macs"] for r in layer_summary(load_model(name)))
    assert macs["pipeline_default_per_face"] == sum(r["macs"] for r in layer_summary(load_model(DEFAULT_MODEL)))


def test_the_default_model_keeps_issue_16s_cost_rule():
    # Issue 16: the pipeline's default model costs at most twice the baseline's multiply-adds per face, unless the
    # pipeline with it is measured at least twice as fast as the `fer` package on every photo of the benchmark
    # (benchmarks/bench_pipeline.py's record, which ships with the book's reference files).
    import json

    from emolib.book.runs import REFERENCE_DIR
    from emolib.book.tables import layer_summary
    from emolib.pipeline import DEFAULT_MODEL

    for name in (DEFAULT_MODEL, "baseline-fer2013"):
        _shipped(name)
    macs = {n: sum(r["macs"] for r in layer_summary(load_model(n))) for n in (DEFAULT_MODEL, "baseline-fer2013")}
    if macs[DEFAULT_MODEL] <= 2 * macs["baseline-fer2013"]:
        return
    record = json.loads((REFERENCE_DIR / "benchmarks" / "pipeline.json").read_text())
    if record["settings"]["model"] == DEFAULT_MODEL:
        timed = {"macs_per_face": record["macs_per_face"], "speedup_vs_fer": record["speedup_vs_fer"]}
    else:
        timed = record.get("also", {}).get(DEFAULT_MODEL)
    assert timed, (f"{DEFAULT_MODEL} costs {macs[DEFAULT_MODEL] / macs['baseline-fer2013']:.1f}x the baseline's "
                   f"multiply-adds and pipeline.json has not timed it (bench_pipeline.py)")
    assert timed["macs_per_face"] == macs[DEFAULT_MODEL], "pipeline.json timed another version of the default"
    assert len(timed["speedup_vs_fer"]) == 3 and min(timed["speedup_vs_fer"].values()) >= 2.0, timed["speedup_vs_fer"]
