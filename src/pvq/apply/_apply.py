"""``apply``: compress a whole model with a recipe or a per-tensor plan, layer by layer in forward order.

Targets: the weight of every ``nn.Linear``, ``nn.Conv1d`` and ``nn.Conv2d`` (grouped and depthwise convs too:
each group's (out/groups, in/groups*kh*kw) block is compressed with its own input Gram matrix), plus any module
whose weight a plan names. Embeddings and ``lm_head`` are opt-in (``include_embeddings``/``include_lm_head`` or
named in the plan) and reported as skipped otherwise. Tied weights (``lm_head`` sharing the embedding matrix)
are one tensor: compressing it changes both, and its row says so.

Calibration-based recipes (gptq, wanda, sparsegpt) get the Gram matrix H = sum x x^T of the layer's inputs,
captured from the model whose earlier layers are already compressed (:mod:`pvq.apply._sequential`). A weight
without calibration inputs (an embedding, a layer never called) gets the recipe's calibration-free
counterpart (gptq -> rtn, wanda/sparsegpt -> magnitude), and its row says so.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any

import torch
from torch import nn

from pvq.apply._compressed import CompressedWeight
from pvq.apply._sequential import Target, run_sequential
from pvq.errors import PvqInputError
from pvq.recipes import BitsBreakdown, Plan, Recipe, parse_recipe, recipe_bits

__all__ = ["CompressedModel", "TensorRow", "apply", "calibration_free", "check_plan"]

_CAPTURABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)


@dataclass(frozen=True)
class TensorRow:
    """One weight tensor of the model: what was done to it.

    ``status``: ``compressed``, ``kept`` (recipe ``none``) or ``skipped`` (embedding/lm_head not opted in).
    ``bits``: real bits per weight by part. ``rel_output_error``: ||(W-Q)X||^2 / ||WX||^2 on the calibration
    inputs X (``tr(D H D^T) / tr(W H W^T)``), ``None`` where no H was captured.
    """

    name: str
    recipe: str
    shape: tuple[int, ...]
    status: str
    bits: BitsBreakdown
    seconds: float = 0.0
    rel_output_error: float | None = None
    note: str = ""

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "recipe": self.recipe,
            "shape": list(self.shape),
            "numel": self.numel,
            "status": self.status,
            **self.bits.to_json(),
            "seconds": self.seconds,
            "rel_output_error": self.rel_output_error,
            "note": self.note,
        }


@dataclass(frozen=True, eq=False)
class CompressedModel:
    """What :func:`apply` returns.

    ``module``: a deep copy of the model with the dequantized weights in place (the original is untouched);
    ``weights``: state-dict name -> :class:`CompressedWeight`; ``rows``: one per weight tensor considered;
    ``recipe_or_plan``: the canonical recipe string, or the :class:`Plan`; ``seconds``: wall time of the whole run;
    ``calibration``: how many batches were used (0 when no recipe needed any).
    """

    module: nn.Module
    weights: Mapping[str, CompressedWeight]
    rows: tuple[TensorRow, ...]
    recipe_or_plan: str | Plan
    seconds: float
    calibration_batches: int = 0

    @property
    def bits_per_weight(self) -> float:
        """Real bits per weight averaged (weighted by size) over the compressed tensors."""
        rows = [r for r in self.rows if r.status == "compressed"]
        n = sum(r.numel for r in rows)
        return sum(r.bits.total * r.numel for r in rows) / n if n else 16.0

    @property
    def paper_bits_per_weight(self) -> float:
        rows = [r for r in self.rows if r.status == "compressed"]
        n = sum(r.numel for r in rows)
        return sum(r.bits.paper * r.numel for r in rows) / n if n else 16.0

    def summary(self) -> dict[str, Any]:
        comp = [r for r in self.rows if r.status == "compressed"]
        return {
            "recipe_or_plan": self.recipe_or_plan
            if isinstance(self.recipe_or_plan, str)
            else self.recipe_or_plan.to_json(),
            "tensors_compressed": len(comp),
            "weights_compressed": sum(r.numel for r in comp),
            "bits_per_weight": self.bits_per_weight,
            "paper_bits_per_weight": self.paper_bits_per_weight,
            "skipped": [r.name for r in self.rows if r.status == "skipped"],
            "calibration_batches": self.calibration_batches,
            "seconds": self.seconds,
        }


def needs_calibration(recipe: Recipe) -> bool:
    from pvq.apply._algorithms import needs_calibration as needs

    return bool(needs(recipe))


def calibration_free(recipe: Recipe) -> Recipe:
    """The recipe with gptq -> rtn and wanda/sparsegpt -> magnitude (same format, granularity, sparsity)."""
    p, q = recipe.prune, recipe.quant
    if p is not None and p.criterion != "magnitude":
        p = replace(p, criterion="magnitude", options=())
    if q is not None and q.algorithm == "gptq":
        q = replace(q, algorithm="rtn", options=())
    return Recipe(p, q)


def _as_plan(recipe_or_plan: str | Recipe | Plan) -> tuple[Plan, str | Plan, bool]:
    """(plan, the recipe's canonical string or the plan, whether it is a single recipe for every default
    target)."""
    if isinstance(recipe_or_plan, Plan):
        return recipe_or_plan, recipe_or_plan, False
    r = parse_recipe(recipe_or_plan)
    return Plan({}, r), str(r), True


@dataclass
class _Param:
    """A unique weight parameter and every (module name, module) holding it (tied weights: several)."""

    param: nn.Parameter
    owners: list[tuple[str, nn.Module]]

    @property
    def names(self) -> list[str]:
        return [f"{m}.weight" if m else "weight" for m, _ in self.owners]

    def kind(self) -> str:
        mods = [m for _, m in self.owners]
        if any(n.rsplit(".", 1)[-1] == "lm_head" for n, _ in self.owners):
            return "lm_head"
        if any(isinstance(m, nn.Embedding) for m in mods):
            return "embedding"
        if any(isinstance(m, _CAPTURABLE) for m in mods):
            return "conv" if any(isinstance(m, (nn.Conv1d, nn.Conv2d)) for m in mods) else "linear"
        return "other"

    def capture_owner(self) -> tuple[str, nn.Module]:
        """The owner whose input gives H (a linear/conv alias if any)."""
        for n, m in self.owners:
            if isinstance(m, _CAPTURABLE):
                return n, m
        return self.owners[0]


def _weight_params(model: nn.Module) -> list[_Param]:
    out: dict[int, _Param] = {}
    for name, mod in model.named_modules(remove_duplicate=False):
        w = mod._parameters.get("weight") if hasattr(mod, "_parameters") else None
        if isinstance(w, torch.Tensor) and w.dim() >= 1:
            p = out.setdefault(id(w), _Param(w, []))  # type: ignore[arg-type]
            if all(n != name for n, _ in p.owners):
                p.owners.append((name, mod))
    return list(out.values())


def _check_plan_names(plan: Plan, params: list[_Param]) -> None:
    known = {n for p in params for n in p.names}
    missing = sorted(n for n in plan.recipes if n not in known)
    if missing:
        shown = ", ".join(missing[:8]) + (f", ... ({len(missing)} in all)" if len(missing) > 8 else "")
        raise PvqInputError(f"plan: the model has no weight tensor named {shown}")


def check_plan(model: nn.Module, plan: Plan) -> None:
    """PvqInputError listing the tensors ``plan`` names that ``model`` has no weight for."""
    _check_plan_names(plan, _weight_params(model))


def _matrix_blocks(mod: nn.Module, w: torch.Tensor) -> int:
    """Weight blocks sharing one H: the conv's groups (1 for anything else)."""
    return int(mod.groups) if isinstance(mod, (nn.Conv1d, nn.Conv2d)) else 1


def _merge(
    parts: list[CompressedWeight], name: str, shape: tuple[int, ...], recipe: Recipe
) -> CompressedWeight:
    def cat(field: str) -> torch.Tensor | None:
        vals = [getattr(p, field) for p in parts]
        return None if vals[0] is None else torch.cat(vals, 0)

    return CompressedWeight(
        name,
        shape,
        recipe,
        codes=cat("codes"),
        scale=cat("scale"),
        zero_point=cat("zero_point"),
        mask=cat("mask"),
        values=cat("values"),
    )


def _rel_error(w: torch.Tensor, q: torch.Tensor, H: torch.Tensor) -> float:
    """sum_g tr(D_g H_g D_g^T) / sum_g tr(W_g H_g W_g^T), with W, Q (rows, n) split into len(H) row blocks.

    Products with H in float32 (a diagnostic: a few significant digits are enough), sums in float64."""
    g = H.shape[0]
    Hf = H.to(torch.float32)
    W = w.float().reshape(g, -1, H.shape[-1])
    D = W - q.float().reshape(W.shape)
    num = float((torch.bmm(D, Hf).double() * D).sum())
    den = float((torch.bmm(W, Hf).double() * W).sum())
    return num / den if den > 0 else float("nan")


def apply(
    model: nn.Module,
    recipe_or_plan: str | Recipe | Plan,
    calibration: Iterable[torch.Tensor | dict[str, torch.Tensor]] | None = None,
    *,
    include_embeddings: bool = False,
    include_lm_head: bool = False,
    progress: Callable[[str], None] | None = None,
    max_calibration_batches: int | None = None,
) -> CompressedModel:
    """Compress ``model`` with a recipe (every conv/linear weight) or a per-tensor :class:`Plan`.

    ``calibration``: batches the model is called on (``model(**batch)`` for a dict, else ``model(batch)``);
    needed when a recipe uses gptq, wanda or sparsegpt, not read otherwise. At most
    ``max_calibration_batches`` are used. ``progress`` receives one line per compressed tensor.
    Raises PvqInputError for an unparsable recipe, a plan naming tensors the model lacks, or a calibration
    recipe without calibration data.
    """
    from pvq.apply._algorithms import compress_matrix, compress_stack
    from pvq.apply._depthwise import compress_depthwise, depthwise_applies

    t0 = time.perf_counter()
    plan, text, single = _as_plan(recipe_or_plan)
    say = progress or (lambda _m: None)
    if max_calibration_batches is not None and max_calibration_batches < 1:
        raise PvqInputError(f"max_calibration_batches: must be >= 1, got {max_calibration_batches}")
    module = copy.deepcopy(model)
    params = _weight_params(module)
    _check_plan_names(plan, params)

    rows: list[TensorRow] = []
    targets: list[Target] = []
    for p in params:
        named = [plan.recipes[n] for n in p.names if n in plan.recipes]
        if len({str(r) for r in named}) > 1:
            raise PvqInputError(
                f"plan: tied names {', '.join(p.names)} are one tensor but get different recipes"
            )
        kind = p.kind()
        shape = tuple(p.param.shape)
        tied = (
            f"tied: {' and '.join(p.names)} are one tensor, compressing it changes all of them"
            if len(p.names) > 1
            else ""
        )
        if named:
            recipe = named[0]
        elif kind in ("linear", "conv"):
            recipe = plan.default
        elif kind in ("embedding", "lm_head"):
            opted = include_embeddings if kind == "embedding" else include_lm_head
            if len(p.names) > 1:  # tied embedding / lm_head: either opt-in compresses the shared tensor
                opted = include_embeddings or include_lm_head
            if not opted:
                flag = "include_embeddings" if kind == "embedding" else "include_lm_head"
                why = f"{kind} left uncompressed ({flag}=True to compress)"
                if len(p.names) > 1:
                    why = "tied embedding/lm_head left uncompressed (include_embeddings or include_lm_head to compress)"
                rows.append(
                    TensorRow(
                        p.names[0],
                        "none",
                        shape,
                        "skipped",
                        recipe_bits("none", shape),
                        note="; ".join(x for x in (why, tied) if x),
                    )
                )
                continue
            recipe = plan.default
        else:
            continue  # norms, biases' owners etc.: only compressed when a plan names them
        if recipe.is_none:
            if named or kind in ("linear", "conv"):
                rows.append(
                    TensorRow(p.names[0], "none", shape, "kept", recipe_bits("none", shape), note=tied)
                )
            continue
        mname, mod = p.capture_owner()
        name = f"{mname}.weight" if mname else "weight"
        t = Target(name, mname, mod, calibrated=needs_calibration(recipe) and isinstance(mod, _CAPTURABLE))
        t.extra.update(recipe=recipe, param=p.param, tied=tied, kind=kind)
        if needs_calibration(recipe) and not t.calibrated:
            t.extra["note"] = (
                f"{kind} has no calibration inputs: {calibration_free(recipe)} used instead of {recipe}"
            )
        targets.append(t)

    batches: list[Any] = []
    if any(t.calibrated for t in targets):
        if calibration is None:
            need = sorted({str(t.extra["recipe"]) for t in targets if t.calibrated})
            raise PvqInputError(f"calibration: recipe {', '.join(need)} needs calibration inputs, none given")
        batches = list(islice(calibration, max_calibration_batches))
        if not batches:
            raise PvqInputError("calibration: no batches given")

    weights: dict[str, CompressedWeight] = {}
    done: dict[str, TensorRow] = {}
    total = len(targets)

    def finish(
        t: Target,
        recipe: Recipe,
        note: str,
        w: torch.Tensor,
        cw: CompressedWeight,
        H: Any,
        ts: float,
        shared: float = 0.0,
    ) -> None:
        """Write ``cw`` into the model and record its row; ``shared``: this tensor's part of a stacked solve."""
        param: torch.Tensor = t.extra["param"]
        shape = tuple(param.shape)
        q = cw.dequantize().reshape(shape)
        rel = _rel_error(w, q.reshape(w.shape), H) if H is not None else None
        with torch.no_grad():
            param.copy_(q.to(param.dtype))
        weights[t.name] = cw
        secs = time.perf_counter() - ts + shared
        done[t.name] = TensorRow(
            t.name,
            str(recipe),
            shape,
            "compressed",
            recipe_bits(recipe, shape),
            secs,
            rel,
            "; ".join(x for x in (note, t.extra["tied"]) if x),
        )
        err = f", output error {rel:.3g}" if rel is not None else ""
        say(f"[{len(done)}/{total}] {t.name} {recipe} ({secs:.1f} s{err})")

    def compress(group: Any, H: torch.Tensor | None) -> None:
        # targets of one group read the same input (one H): those with the same recipe are solved together
        stacks: dict[str, list[tuple[Target, Recipe, str, torch.Tensor, tuple[int, ...]]]] = {}
        for t in group:
            ts = time.perf_counter()
            recipe: Recipe = t.extra["recipe"]
            note = t.extra.get("note", "")
            if needs_calibration(recipe) and H is None:
                if not note:
                    note = f"never called on the calibration inputs: {calibration_free(recipe)} used instead of {recipe}"
                recipe = calibration_free(recipe)
            param: torch.Tensor = t.extra["param"]
            shape = tuple(param.shape)
            w = (
                param.detach().float().reshape(shape[0], -1)
                if param.dim() > 1
                else param.detach().float().reshape(1, -1)
            )
            blocks = _matrix_blocks(t.module, w) if H is not None else 1
            if H is not None and blocks > 1:
                if recipe.quant is not None and recipe.quant.group_size == 0:
                    raise PvqInputError(
                        f"{t.name}: per-tensor scale with {recipe} on a grouped conv is not supported "
                        "(each group has its own inputs); use channel or gN granularity"
                    )
                rows_g = shape[0] // blocks
                cw = (
                    compress_depthwise(t.name, w, recipe, H, shape)
                    if depthwise_applies(recipe, rows_g, w.shape[1])
                    else None
                )
                if cw is None:  # several channels per group, or a case the batched path leaves out
                    parts = [
                        compress_matrix(
                            t.name,
                            w[g * rows_g : (g + 1) * rows_g],
                            recipe,
                            H[g],
                            shape=(rows_g, w.shape[1]),
                        )
                        for g in range(blocks)
                    ]
                    cw = _merge(parts, t.name, shape, recipe)
                finish(t, recipe, note, w, cw, H, ts)
            else:
                flat = shape if param.dim() > 1 else (1, shape[0])
                stacks.setdefault(f"{recipe}|{w.shape[1]}", []).append((t, recipe, note, w, flat))
        for items in stacks.values():
            ts = time.perf_counter()
            recipe = items[0][1]
            cws = compress_stack(
                [(t.name, w, flat) for t, _, _, w, flat in items], recipe, None if H is None else H[0]
            )
            solve = time.perf_counter() - ts
            rows_all = sum(int(w.shape[0]) for _, _, _, w, _ in items)
            for (t, _, note, w, _), cw in zip(items, cws, strict=True):
                finish(t, recipe, note, w, cw, H, time.perf_counter(), solve * int(w.shape[0]) / rows_all)

    run_sequential(module, targets, batches, compress, say)
    rows.extend(done[t.name] for t in targets if t.name in done)
    order = {n: i for i, p in enumerate(params) for n in p.names}
    rows.sort(key=lambda r: order.get(r.name, len(order)))
    if single and not weights and not any(r.status == "kept" for r in rows):
        raise PvqInputError("model: no conv/linear weights to compress")
    return CompressedModel(module, weights, tuple(rows), text, time.perf_counter() - t0, len(batches))
