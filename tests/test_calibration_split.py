"""Held-out split: calibration text/photos never overlap the evaluation slice perplexity and the tables use."""

from __future__ import annotations

import pytest
import torch

from pvq.data import perplexity_text, sample_photo_crops, split_text
from pvq.errors import PvqInputError
from pvq.models import (
    HELD_OUT_TOKENS,
    calibration_batches,
    calibration_text,
    encode_ids,
    evaluation_text,
    get_tokenizer,
    held_out_chars,
)


def test_split_text_cuts_at_a_paragraph() -> None:
    text = "a" * 10 + "\n\n" + "b" * 10 + "\n\n" + "c" * 5
    ev, cal = split_text(text, 5)
    assert ev == "a" * 10 and ev + cal == text
    with pytest.raises(PvqInputError):
        split_text(text, 0)


def test_smollm2_calibration_windows_never_touch_the_evaluation_slice() -> None:
    tok = get_tokenizer("smollm2")
    text = perplexity_text()
    ev, cal = evaluation_text("smollm2"), calibration_text("smollm2")
    assert ev + cal == text and len(ev) >= held_out_chars("smollm2")
    # what perplexity scores (the first 1,024 tokens) lies inside the evaluation slice, with room to spare
    assert len(encode_ids(tok, ev)) >= HELD_OUT_TOKENS >= 1024
    batches = calibration_batches("smollm2", n=4, seed=3, batch_size=4, seq_len=64)
    for b in batches:
        for row in b["input_ids"]:
            piece = tok.decode(row.tolist())
            assert piece in cal  # drawn from the calibration part...
            assert text.find(piece) >= len(ev) or piece not in ev  # ...and not from the evaluation slice
    assert not any(tok.decode(b["input_ids"][0].tolist()) in ev for b in batches)


def test_minilm_sentences_come_from_the_calibration_part() -> None:
    tok = get_tokenizer("minilm")
    ev = evaluation_text("minilm")
    b = calibration_batches("minilm", n=2, seed=0, batch_size=8)[0]
    for ids, mask in zip(b["input_ids"], b["attention_mask"], strict=True):
        sentence = tok.decode(ids[mask.bool()].tolist())
        assert sentence and sentence not in " ".join(ev.lower().split())


def test_photo_regions_are_disjoint_and_default_unchanged() -> None:
    a = sample_photo_crops(2, 32, seed=0)
    assert torch.equal(a, sample_photo_crops(2, 32, seed=0, region=(0.0, 1.0)))
    cal = calibration_batches("mobilenet_v2", 1, batch_size=2, disjoint=True)[0]
    assert cal.shape == (2, 3, 224, 224)
    with pytest.raises(PvqInputError, match="region"):
        sample_photo_crops(1, 32, region=(0.6, 0.6))
