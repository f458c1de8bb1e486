"""Model-level evaluation on real held-out data: perplexity + KL (LMs), embedding cosine + paraphrase retrieval
(encoders), top-1 agreement + KL or labelled accuracy (image classifiers); each number with n and an interval.

``pvq.evaluate(model, reference, name=...)`` works as a call: this package is callable and forwards to
:func:`evaluate`.
"""

import sys
import types

from pvq.evaluate._data import (
    evaluation_photos,
    held_out_sentences,
    held_out_text,
    photo_views,
)
from pvq.evaluate._evaluate import KINDS, evaluate, kind_of
from pvq.evaluate._result import DIRECTIONS, EvalResult, EvalRow
from pvq.evaluate._stats import mean_interval, wilson_interval
from pvq.evaluate._tasks import classifier_metrics, encoder_metrics, lm_metrics, perturb_sentence

__all__ = [
    "DIRECTIONS",
    "KINDS",
    "EvalResult",
    "EvalRow",
    "classifier_metrics",
    "encoder_metrics",
    "evaluate",
    "evaluation_photos",
    "held_out_sentences",
    "held_out_text",
    "kind_of",
    "lm_metrics",
    "mean_interval",
    "perturb_sentence",
    "photo_views",
    "wilson_interval",
]


class _CallableModule(types.ModuleType):
    """``pvq.evaluate(...)`` is ``pvq.evaluate.evaluate(...)``."""

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
