"""The bundled real models: exact key fit, sensible outputs, deterministic loads (DESIGN.md: real parts)."""

from __future__ import annotations

import math

import pytest
import torch

from pvq.data import imagenet_preprocess, perplexity_text, sample_photos
from pvq.models import (
    BUILDING_CLASSES,
    bundled_names,
    bundled_path,
    calibration_batches,
    create_model,
    embed_sentences,
    get_tokenizer,
    input_spec,
    list_bundled,
    load_bundled,
    load_pretrained,
    load_weights,
    perplexity,
    timm_name,
)


def _installed(name: str) -> bool:
    return bundled_path(name, required=False) is not None


def _need(name: str) -> None:
    if not _installed(name):
        pytest.skip(f"{name} not installed (make install)")


@pytest.fixture(scope="module")
def loaded() -> dict[str, tuple[torch.nn.Module, object]]:
    """Each bundled model with the KeyReport of loading its weights: (model, KeyReport). Built lazily."""
    return {}


def _model(loaded: dict, name: str) -> torch.nn.Module:  # noqa: ANN001
    _need(name)
    if name not in loaded:
        loaded[name] = load_bundled(name)
    return loaded[name][0]


def test_registry_lists_four_models() -> None:
    rows = {r.name: r for r in list_bundled()}
    assert list(rows) == ["mobilenet_v2", "efficientnet_lite0", "minilm", "smollm2"] == bundled_names()
    expected = {
        "mobilenet_v2": 3_504_872,
        "efficientnet_lite0": 4_652_008,
        "minilm": 22.7e6,
        "smollm2": 134.5e6,
    }
    for name, params in expected.items():
        r = rows[name]
        if not r.installed:
            continue
        assert r.num_params == pytest.approx(params, rel=2e-3), name  # published parameter counts
        assert r.file_size > 1e6 and r.license
    assert "already 4-bit" in rows["smollm2"].notes


@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet_lite0", "minilm", "smollm2"])
def test_zero_missing_or_unexpected_keys(loaded: dict, name: str) -> None:  # noqa: ANN001
    model = _model(loaded, name)
    report = loaded[name][1]
    assert report.missing == () and report.unexpected == ()
    # the weight set of the bundled name uses the module's own names and values
    ws = load_weights(name)
    params = dict(model.named_parameters())
    assert set(ws) <= set(params)
    some = list(ws)[:: max(1, len(ws) // 5)]
    for k in some:
        assert torch.equal(ws[k], params[k].detach().float()), k
    if name == "smollm2":
        assert any("already 4-bit" in n for n in ws.notes)
        assert "already 4-bit" in ws.info(some[0]).note


@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet_lite0"])
def test_cnn_sees_a_building_in_china_jpg(loaded: dict, name: str) -> None:  # noqa: ANN001
    model = _model(loaded, name)
    spec = input_spec(name)
    x = imagenet_preprocess(sample_photos()["china"], spec.resize, spec.size, spec.mean, spec.std)[None]
    with torch.no_grad():
        logits = model(x)
    top5 = logits[0].topk(5).indices.tolist()
    assert any(i in BUILDING_CLASSES for i in top5), [(i, BUILDING_CLASSES.get(i)) for i in top5]
    assert logits[0].argmax().item() in BUILDING_CLASSES  # the top-1 already is a building (palace)
    again = create_model(name)  # a second, independent load
    with torch.no_grad():
        assert torch.equal(again(x), logits)


def test_efficientnet_keys_map_onto_timm() -> None:
    _need("efficientnet_lite0")
    from pvq.models._files import read_state_dict

    keys = list(read_state_dict(bundled_path("efficientnet_lite0")))
    mapped = [timm_name(k) for k in keys]
    assert len(set(mapped)) == len(keys)
    assert timm_name("_conv_stem.weight") == "conv_stem.weight"
    assert timm_name("_blocks.0._depthwise_conv.weight") == "blocks.0.0.conv_dw.weight"
    assert timm_name("_blocks.1._expand_conv.weight") == "blocks.1.0.conv_pw.weight"
    assert timm_name("_blocks.15._project_conv.weight") == "blocks.6.0.conv_pwl.weight"
    assert timm_name("_bn1.running_var") == "bn2.running_var" and timm_name("_fc.bias") == "classifier.bias"


def test_minilm_paraphrases(loaded: dict) -> None:  # noqa: ANN001
    model = _model(loaded, "minilm")
    tok = get_tokenizer("minilm")
    e = embed_sentences(
        model,
        tok,
        [
            "A man is playing a guitar.",
            "Someone is playing the guitar.",
            "How do I cook pasta at home?",
            "The stock market fell sharply today.",
        ],
    )
    assert e.shape == (4, 384)
    assert torch.allclose(e.norm(dim=1), torch.ones(4), atol=1e-5)
    cos = e @ e.T
    assert cos[0, 1] > 0.6
    assert cos[0, 2] < 0.3 and cos[0, 3] < 0.3 and cos[2, 3] < 0.3


def test_smollm2_perplexity(loaded: dict) -> None:  # noqa: ANN001
    model = _model(loaded, "smollm2")
    ppl = perplexity(model, get_tokenizer("smollm2"), perplexity_text(), max_tokens=128, window=128)
    assert math.isfinite(ppl) and 2.0 < ppl < 50.0


def test_smollm2_tokenizer_roundtrip() -> None:
    _need("smollm2")
    tok = get_tokenizer("smollm2")
    text = "def f(x):\n    return x ** 2  # 12345 café"
    ids = tok.encode(text).ids
    assert tok.decode(ids) == text
    assert [tok.id_to_token(i) for i in tok.encode("123").ids] == ["1", "2", "3"]  # digits split one by one


@pytest.mark.parametrize("name", ["mobilenet_v2", "minilm", "smollm2"])
def test_calibration_batches(loaded: dict, name: str) -> None:  # noqa: ANN001
    _need(name)
    a = calibration_batches(name, 2, seed=1, batch_size=2, seq_len=32)
    b = calibration_batches(name, 2, seed=1, batch_size=2, seq_len=32)
    c = calibration_batches(name, 2, seed=2, batch_size=2, seq_len=32)
    assert len(a) == 2

    def flat(batches: list) -> list[torch.Tensor]:
        return [t for x in batches for t in (x.values() if isinstance(x, dict) else [x])]

    assert all(torch.equal(x, y) for x, y in zip(flat(a), flat(b), strict=True))
    assert not all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(flat(a), flat(c), strict=True))
    model = _model(loaded, name)
    with torch.no_grad():
        out = model(a[0]) if isinstance(a[0], torch.Tensor) else model(**a[0])
    out = out.logits if hasattr(out, "logits") else out
    assert out.shape[0] == 2 and bool(torch.isfinite(out).all())


def test_minilm_own_bert_matches_transformers(loaded: dict) -> None:  # noqa: ANN001
    """pvq's own BERT (the fallback without transformers) loads the same file exactly and agrees."""
    reference = _model(loaded, "minilm")
    own = create_model("minilm", pretrained=False, backend="pvq")
    report = load_pretrained(own, "minilm")
    assert report.missing == () and report.unexpected == ()
    assert type(own).__name__ == "BertSentenceEncoder"
    tok = get_tokenizer("minilm")
    sentences = [
        "A man is playing a guitar.",
        "Someone plays the guitar on a stage in front of many people.",
        "Hi",
    ]
    e_own, e_ref = embed_sentences(own, tok, sentences), embed_sentences(reference, tok, sentences)
    assert torch.allclose(e_own, e_ref, atol=1e-5)


def test_own_llama_matches_transformers_small() -> None:
    """pvq's own Llama decoder (SmolLM2 without transformers) = transformers' LlamaForCausalLM, same weights."""
    pytest.importorskip("transformers")
    from transformers import LlamaForCausalLM

    from pvq.models._llama import LlamaLM
    from pvq.models._llama_gguf import LlamaGGUFConfig
    from pvq.models._smollm2 import _hf_config

    cfg = LlamaGGUFConfig(vocab_size=97, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                          num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=64,
                          rope_theta=100000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
                          bos_token_id=1, eos_token_id=2)  # fmt: skip
    torch.manual_seed(0)
    ref = LlamaForCausalLM(_hf_config(cfg)).eval()
    own = LlamaLM(cfg).eval()
    with torch.no_grad():  # RMSNorm weights are ones at init: make them informative
        for k, v in ref.state_dict().items():
            if "norm" in k:
                v.uniform_(0.5, 1.5)
    own.load_state_dict(ref.state_dict())
    assert own.lm_head.weight is own.model.embed_tokens.weight
    x = torch.randint(0, 97, (2, 20), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 20, dtype=torch.int64)
    mask[1, 13:] = 0
    with torch.no_grad():
        a, b = ref(input_ids=x, attention_mask=mask).logits, own(input_ids=x, attention_mask=mask).logits
    assert torch.allclose(a[0], b[0], atol=1e-5) and torch.allclose(a[1, :13], b[1, :13], atol=1e-5)


@pytest.mark.slow
def test_smollm2_own_llama_backend_full(loaded: dict) -> None:  # noqa: ANN001
    """The full SmolLM2 under pvq's own decoder gives the transformers logits."""
    reference = _model(loaded, "smollm2")
    own, report = load_bundled("smollm2", backend="pvq")
    assert type(own).__name__ == "LlamaLM" and report.ok and report.tied == ("lm_head.weight",)
    x = torch.randint(0, 49152, (1, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(reference(input_ids=x).logits, own(input_ids=x).logits, atol=1e-4)
