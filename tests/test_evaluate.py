"""pvq.evaluate: intervals, metrics against hand-made models, held-out data, modality checks."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from pvq.errors import PvqInputError
from pvq.evaluate import (
    EvalRow,
    classifier_metrics,
    encoder_metrics,
    evaluate,
    held_out_sentences,
    held_out_text,
    lm_metrics,
    mean_interval,
    perturb_sentence,
    wilson_interval,
)


def test_wilson_interval_known_values() -> None:
    lo, hi = wilson_interval(52, 96)
    assert (lo, hi) == pytest.approx((0.4424, 0.6379), abs=1e-3)  # Wilson, z = 1.96, by hand
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_mean_interval_covers_the_mean() -> None:
    rng = np.random.default_rng(0)
    m, lo, hi = mean_interval(rng.normal(2.0, 1.0, 400))
    assert lo < 2.0 < hi and hi - lo == pytest.approx(2 * 1.966 / 20, rel=0.15)
    assert math.isnan(mean_interval(np.array([1.0]))[1])


class _TinyLM(torch.nn.Module):
    def __init__(self, vocab: int = 11) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, 8)
        self.out = torch.nn.Linear(8, vocab)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.emb(input_ids))


def test_lm_metrics_identity_and_perturbed() -> None:
    torch.manual_seed(0)
    lm = _TinyLM()
    ids = list(np.random.default_rng(0).integers(0, 11, 300))
    same = {m: (v, b) for m, v, b, *_ in lm_metrics(lm, copy.deepcopy(lm), ids, window=64)}
    assert same["perplexity"][0] == pytest.approx(same["perplexity"][1])
    assert same["kl"][0] == pytest.approx(0.0, abs=1e-12)
    assert math.isinf(same["output_snr_db"][0])
    noisy = copy.deepcopy(lm)
    with torch.no_grad():
        noisy.out.weight.add_(0.5 * torch.randn_like(noisy.out.weight))
    rows = {m: (v, n) for m, v, _, n, *_ in lm_metrics(noisy, lm, ids, window=64)}
    assert rows["kl"][0] > 1e-3
    assert rows["perplexity"][1] == 300 - 5  # 5 windows (64, 64, 64, 64, 44): one unpredicted token each


def test_classifier_metrics_agreement_and_accuracy() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5))
    x = torch.randn(40, 3, 2, 2)
    y = net(x).argmax(-1)
    rows = {r[0]: r for r in classifier_metrics(net, copy.deepcopy(net), x, y, batch_size=7)}
    assert rows["agreement"][1] == 1.0 and rows["agreement"][3] == 40
    assert rows["accuracy"][1] == 1.0 and rows["accuracy"][2] == 1.0
    other = copy.deepcopy(net)
    with torch.no_grad():
        other[1].weight.mul_(-1.0)
    rows = {r[0]: r for r in classifier_metrics(other, net, x, y)}
    assert rows["agreement"][1] < 0.5
    assert rows["kl"][1] > 0.1
    assert rows["agreement"][4] <= rows["agreement"][1] <= rows["agreement"][5]


def test_encoder_metrics_retrieval_by_hand() -> None:
    # bag-of-letters embeddings: a query with words dropped still retrieves its own sentence
    def embed(sents: list[str]) -> torch.Tensor:
        v = torch.tensor([[s.lower().count(c) for c in "abcdefghijklmnopqrstuvwxyz"] for s in sents], dtype=torch.float64)
        return torch.nn.functional.normalize(v, dim=-1)

    sents = ["alpha beta gamma delta epsilon", "zzz yyy xxx www vvv uuu", "qqq kkk jjj hhh ppp"]
    rows = {r[0]: r for r in encoder_metrics(embed, embed, sents, seed=1)}
    assert rows["retrieval_top1"][1] == rows["retrieval_top1"][2] == 1.0
    assert rows["cosine"][1] == pytest.approx(1.0)


def test_perturb_sentence_is_seeded_and_never_empty() -> None:
    s = "one two three four five six seven eight"
    a = perturb_sentence(s, np.random.default_rng(3))
    assert a == perturb_sentence(s, np.random.default_rng(3))
    assert set(a.split()) <= set(s.split()) and a
    assert perturb_sentence("word", np.random.default_rng(0), drop=1.0) == "word"


@pytest.mark.parametrize("name", ["smollm2", "minilm"])
def test_held_out_text_never_meets_calibration(name: str) -> None:
    from pvq.data import perplexity_text
    from pvq.models import calibration_text

    pytest.importorskip("tokenizers")
    held, calib = held_out_text(name), calibration_text(name)
    text = perplexity_text()
    assert text.startswith(held) and text.endswith(calib) and len(held) + len(calib) <= len(text)
    assert len(held) >= 60_000 and len(held_out_sentences(name)) == 200


def test_modality_mismatch_is_a_clear_error(tmp_path) -> None:
    net = torch.nn.Linear(2, 2)
    (tmp_path / "t.txt").write_text("Some text here. More text follows.")
    with pytest.raises(PvqInputError, match="needs a folder of images"):
        evaluate(net, net, name="mobilenet_v2", data=tmp_path / "t.txt")
    with pytest.raises(PvqInputError, match="needs a UTF-8 text file"):
        evaluate(net, net, name="smollm2", data=tmp_path)
    with pytest.raises(PvqInputError, match="not found"):
        evaluate(net, net, name="smollm2", data=tmp_path / "missing.txt")


def test_rows_serialise_strictly() -> None:
    row = EvalRow("m", "int4:g128:gptq", 4.1, "output_snr_db", 12.0, math.inf, "held-out", 10)
    d = row.to_json()
    assert d["baseline"] is None and d["ci_low"] is None and d["direction"] == "higher"


@pytest.mark.slow  # 10,000 test images, about a minute on a loaded 2-core machine
def test_fashion_accuracy_on_the_whole_test_split() -> None:
    from pvq.data import DEFAULT_FASHION_MNIST_ROOT
    from pvq.evaluate._fashion import fashion_calibration, fashion_test
    from pvq.models._small_resnet import small_resnet
    from pvq.training import evaluate_accuracy

    if not DEFAULT_FASHION_MNIST_ROOT.is_dir():
        pytest.skip("Fashion-MNIST is not installed")
    torch.manual_seed(0)
    ref = small_resnet((4, 8, 8)).eval()
    model = copy.deepcopy(ref)
    with torch.no_grad():
        model.fc.weight.mul_(-1.0)  # a different classifier: accuracy and agreement must move
    rows = {r.metric: r for r in evaluate(model, ref, name="small_resnet").rows}
    x, y = fashion_test()
    acc = rows["accuracy"]
    assert acc.n == 10_000 == len(y) and acc.split == "test" and acc.interval == "wilson"
    from torch.utils.data import TensorDataset

    assert acc.value == pytest.approx(evaluate_accuracy(model, TensorDataset(x, y)) / 100)
    with torch.no_grad():
        k_ref = int((torch.cat([ref(xb) for xb in x.split(1000)]).argmax(-1) == y).sum())
    assert acc.baseline == k_ref / 10_000  # the uncompressed model's exact accuracy on the same images
    assert acc.ci_low < acc.value < acc.ci_high and rows["agreement"].value < 1.0
    cal = fashion_calibration(2, batch_size=4)
    assert [tuple(b.shape) for b in cal] == [(4, 1, 28, 28)] * 2
    assert all(torch.equal(a, b) for a, b in zip(cal, fashion_calibration(2, batch_size=4), strict=True))
