"""Model-level metrics, one function per kind of model; each compares against the uncompressed reference.

Pure computation over given inputs (no file I/O): language models (perplexity, next-token KL), sentence
encoders (embedding cosine, paraphrase retrieval), image classifiers (top-1 agreement, KL, labelled accuracy).
Every function also returns the output-error SNR of the final output (the proxy) beside the real metrics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from pvq.evaluate._stats import mean_interval, wilson_interval
from pvq.metrics import snr_db

__all__ = ["Measured", "lm_metrics", "encoder_metrics", "classifier_metrics", "perturb_sentence"]

# (metric, value, baseline, n, ci_low, ci_high, interval)
Measured = tuple[str, float, float, int, float, float, str]


def _proportion(metric: str, k: int, n: int, baseline: float) -> Measured:
    lo, hi = wilson_interval(k, n)
    return (metric, k / n if n else math.nan, baseline, n, lo, hi, "wilson")


def _mean(metric: str, values: np.ndarray, baseline: float, interval: str = "t over examples") -> Measured:
    m, lo, hi = mean_interval(values)
    return (metric, m, baseline, int(np.asarray(values).size), lo, hi, interval)


def _kl_rows(ref_logits: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """KL(reference || model) in nats for each row of (N, C) logits -> (N,)."""
    lp_ref = torch.log_softmax(ref_logits.double(), dim=-1)
    lp = torch.log_softmax(logits.double(), dim=-1)
    return (lp_ref.exp() * (lp_ref - lp)).sum(-1)


def _output_snr(ref: torch.Tensor, out: torch.Tensor) -> float:
    ref64, out64 = ref.double(), out.double()
    return snr_db(float((ref64**2).sum()), float(((ref64 - out64) ** 2).sum()))


def _logits(out: Any) -> torch.Tensor:
    return out.logits if hasattr(out, "logits") else out


@torch.no_grad()
def lm_metrics(
    model: torch.nn.Module, reference: torch.nn.Module, ids: Sequence[int], window: int = 256
) -> list[Measured]:
    """Perplexity (exp mean NLL) of ``model`` and ``reference`` on token ``ids`` cut into consecutive windows of
    ``window`` tokens (each scored on its own, as :func:`pvq.models.perplexity`), the mean next-token
    KL(reference || model) per predicted token with a t interval over windows, and the logits' output SNR."""
    nll, nll_ref, count = 0.0, 0.0, 0
    kl_windows, sig, err = [], 0.0, 0.0
    for start in range(0, len(ids), window):
        chunk = list(ids[start : start + window])
        if len(chunk) < 2:
            break
        x = torch.tensor([chunk], dtype=torch.int64)  # (1, T)
        lo = _logits(model(input_ids=x))[0, :-1].float()  # (T-1, V)
        lo_ref = _logits(reference(input_ids=x))[0, :-1].float()
        nll += float(torch.nn.functional.cross_entropy(lo, x[0, 1:], reduction="sum"))
        nll_ref += float(torch.nn.functional.cross_entropy(lo_ref, x[0, 1:], reduction="sum"))
        count += len(chunk) - 1
        kl_windows.append(float(_kl_rows(lo_ref, lo).mean()))
        sig += float((lo_ref.double() ** 2).sum())
        err += float(((lo_ref.double() - lo.double()) ** 2).sum())
    if count == 0:
        raise ValueError("lm_metrics: need at least 2 tokens")
    ppl, ppl_ref = math.exp(nll / count), math.exp(nll_ref / count)
    m, klo, khi = mean_interval(np.asarray(kl_windows))
    return [
        ("perplexity", ppl, ppl_ref, count, math.nan, math.nan, "none"),
        ("kl", m, 0.0, count, klo, khi, f"t over {len(kl_windows)} windows"),
        ("output_snr_db", snr_db(sig, err), math.inf, count, math.nan, math.nan, "none"),
    ]


def perturb_sentence(sentence: str, rng: np.random.Generator, drop: float = 0.3) -> str:
    """A paraphrase-like query: drop a seeded ``drop`` fraction of the words (never all of them)."""
    words = sentence.split()
    keep = rng.random(len(words)) >= drop
    if not keep.any():
        keep[int(rng.integers(len(words)))] = True
    return " ".join(w for w, k in zip(words, keep, strict=True) if k)


@torch.no_grad()
def encoder_metrics(
    embed: Callable[[list[str]], torch.Tensor],
    embed_ref: Callable[[list[str]], torch.Tensor],
    sentences: Sequence[str],
    seed: int = 0,
) -> list[Measured]:
    """Mean cosine between the model's and the reference's embeddings of ``sentences``; paraphrase retrieval
    top-1: each query (the sentence with 30 % of its words dropped, seeded) must retrieve its own sentence among
    all others by cosine, scored with the model (baseline: the reference) — and the embeddings' output SNR."""
    sents = list(sentences)
    rng = np.random.default_rng(seed)
    queries = [perturb_sentence(s, rng) for s in sents]
    e, e_ref = embed(sents), embed_ref(sents)  # (N, H) unit vectors
    q, q_ref = embed(queries), embed_ref(queries)
    cos = torch.nn.functional.cosine_similarity(e.double(), e_ref.double(), dim=-1).numpy()
    target = torch.arange(len(sents))
    hits = int(((q @ e.T).argmax(-1) == target).sum())
    hits_ref = int(((q_ref @ e_ref.T).argmax(-1) == target).sum())
    n = len(sents)
    return [
        _proportion("retrieval_top1", hits, n, hits_ref / n),
        _mean("cosine", cos, 1.0),
        ("output_snr_db", _output_snr(e_ref, e), math.inf, n, math.nan, math.nan, "none"),
    ]


@torch.no_grad()
def classifier_metrics(
    model: torch.nn.Module,
    reference: torch.nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor | None = None,
    batch_size: int = 32,
) -> list[Measured]:
    """Top-1 agreement with the reference (Wilson interval), mean KL(reference || model) over examples, the
    logits' output SNR, and with ``labels`` top-1/top-5 accuracy (baseline: the reference's accuracy)."""
    outs, refs = [], []
    for xb in x.split(batch_size):
        outs.append(_logits(model(xb)).float())
        refs.append(_logits(reference(xb)).float())
    out, ref = torch.cat(outs), torch.cat(refs)  # (N, C)
    n = out.shape[0]
    rows = [
        _proportion("agreement", int((out.argmax(-1) == ref.argmax(-1)).sum()), n, 1.0),
        _mean("kl", _kl_rows(ref, out).numpy(), 0.0),
        ("output_snr_db", _output_snr(ref, out), math.inf, n, math.nan, math.nan, "none"),
    ]
    if labels is not None:
        y = labels.view(-1)
        top5, top5_ref = out.topk(min(5, out.shape[1]), -1).indices, ref.topk(min(5, ref.shape[1]), -1).indices
        acc_ref = int((ref.argmax(-1) == y).sum()) / n  # exact k / n, as the model's own value
        acc5_ref = int((top5_ref == y[:, None]).any(-1).sum()) / n
        rows.append(_proportion("accuracy", int((out.argmax(-1) == y).sum()), n, acc_ref))
        rows.append(_proportion("top5_accuracy", int((top5 == y[:, None]).any(-1).sum()), n, acc5_ref))
    return rows
