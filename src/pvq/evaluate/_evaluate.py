"""``evaluate``: the model's own quality on held-out real data, next to the uncompressed reference."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from pvq.errors import PvqInputError
from pvq.evaluate._data import held_out_sentences, held_out_text, photo_views
from pvq.evaluate._result import EvalResult, EvalRow
from pvq.evaluate._tasks import Measured, classifier_metrics, encoder_metrics, lm_metrics

__all__ = ["KINDS", "evaluate", "kind_of"]

KINDS = ("lm", "encoder", "image", "fashion")
_BUNDLED_KIND = {
    "smollm2": "lm",
    "minilm": "encoder",
    "mobilenet_v2": "image",
    "efficientnet_lite0": "image",
    "small_resnet": "fashion",
}


def kind_of(name: str) -> str:
    """The evaluation kind of a bundled model (lm | encoder | image)."""
    if name not in _BUNDLED_KIND:
        raise PvqInputError(f"{name}: no evaluation task known (bundled: {', '.join(_BUNDLED_KIND)})")
    return _BUNDLED_KIND[name]


def _check_data(kind: str, data: str | os.PathLike[str] | None) -> Path | None:
    """A user's --data must match the model's modality: a text file for lm/encoder, an image folder for image."""
    if data is None:
        return None
    p = Path(data)
    if not p.exists():
        raise PvqInputError(f"--data: {p} not found")
    if kind == "fashion" and not p.is_dir():
        raise PvqInputError(f"--data: {p} is a file; a Fashion-MNIST model needs the folder of its IDX files")
    if kind == "image" and not p.is_dir():
        raise PvqInputError(f"--data: {p} is a file; an image model needs a folder of images (one subfolder per class)")
    if kind in ("lm", "encoder") and p.is_dir():
        raise PvqInputError(f"--data: {p} is a folder; a text model needs a UTF-8 text file")
    return p


def evaluate(
    model: torch.nn.Module,
    reference: torch.nn.Module,
    *,
    name: str,
    recipe: str = "none",
    bits_per_weight: float = 16.0,
    data: str | os.PathLike[str] | None = None,
    kind: str | None = None,
    tokenizer: Any = None,
    max_tokens: int = 1024,
    window: int = 256,
    max_sentences: int = 200,
    seed: int = 0,
) -> EvalResult:
    """Evaluate ``model`` against the uncompressed ``reference`` on held-out data (see :mod:`pvq.evaluate._data`).

    ``kind`` (default: from the bundled ``name``): ``fashion`` — test accuracy (top-1 and top-5, Wilson intervals;
    baseline: the reference's accuracy) with top-1 agreement and KL on Fashion-MNIST's 10,000 test images
    (``data``: the folder of its IDX files, default the system one); ``lm`` — perplexity and next-token KL on the first
    ``max_tokens`` tokens of the held-out text (or of the text file ``data``); ``encoder`` — embedding cosine and
    paraphrase retrieval on held-out sentences; ``image`` — top-1 agreement and KL on scikit-image's photos (ten
    views each), or top-1/top-5 accuracy on a labelled image folder ``data``. Text models need ``tokenizer``
    (default: the bundled one). Every row carries its metric, direction, split, n and 95 % interval.
    """
    kind = kind or kind_of(name)
    if kind not in KINDS:
        raise PvqInputError(f"kind: must be one of {', '.join(KINDS)}, got {kind!r}")
    path = _check_data(kind, data)
    split = "user" if path is not None else "held-out"
    model.eval()
    reference.eval()
    measured: list[Measured]
    if kind == "image":
        measured, split = _image(model, reference, name, path, split)
    elif kind == "fashion":
        from pvq.evaluate._fashion import fashion_test

        x, y = fashion_test(path)
        measured, split = classifier_metrics(model, reference, x, y, batch_size=500), "test"
    else:
        tok = tokenizer if tokenizer is not None else _bundled_tokenizer(name)
        text = held_out_text(name) if path is None else _user_text(path)
        if kind == "lm":
            from pvq.models import encode_ids

            if max_tokens < 2 or window < 2:
                raise PvqInputError(f"max_tokens/window: need at least 2 tokens, got {max_tokens}/{window}")
            ids = encode_ids(tok, text[: max_tokens * 12])[:max_tokens]
            if path is None and len(ids) < max_tokens:
                raise PvqInputError(f"max_tokens: the held-out slice has only {len(ids)} tokens")
            measured = lm_metrics(model, reference, ids, window)
        else:
            from pvq.models import embed_sentences, split_sentences

            sents = held_out_sentences(name, max_sentences) if path is None else split_sentences(text)[:max_sentences]
            if len(sents) < 2:
                raise PvqInputError("--data: fewer than 2 prose sentences to evaluate on")
            measured = encoder_metrics(
                lambda s: embed_sentences(model, tok, s), lambda s: embed_sentences(reference, tok, s), sents, seed
            )
    rows = tuple(
        EvalRow(name, recipe, float(bits_per_weight), m, v, b, split, n, lo, hi, iv) for m, v, b, n, lo, hi, iv in measured
    )
    return EvalResult(rows)


def _bundled_tokenizer(name: str) -> Any:
    from pvq.models import get_tokenizer

    return get_tokenizer(name)


def _user_text(path: Path) -> str:
    from pvq.data import text_file

    return text_file(path)


def _image(
    model: torch.nn.Module, reference: torch.nn.Module, name: str, path: Path | None, split: str
) -> tuple[list[Measured], str]:
    from pvq.models import input_spec

    try:
        spec = input_spec(name)
    except PvqInputError:
        from pvq.models import InputSpec

        spec = InputSpec("image")
    if path is None:
        return classifier_metrics(model, reference, photo_views(spec.mean, spec.std, spec.size, spec.resize)), split
    from pvq.data import image_folder

    ds = image_folder(path, size=spec.size, normalize=False)
    x, y = ds.tensors
    m = torch.tensor(spec.mean).view(3, 1, 1)
    s = torch.tensor(spec.std).view(3, 1, 1)
    labelled = any(d.is_dir() for d in path.iterdir())
    return classifier_metrics(model, reference, (x - m) / s, y if labelled else None), split
