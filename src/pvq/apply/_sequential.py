"""Sequential calibration: each layer's input Gram matrix H = sum x x^T is taken from the model whose earlier
layers are already compressed (as GPTQ and SparseGPT do), with as few forward passes as possible.

- One *discovery* pass on the first calibration batch records the order in which the target layers are first
  called and which of them read the same input tensor (q/k/v, gate/up): those form a *group* and share one H.
- If the model has a stack of repeated blocks (an ``nn.ModuleList``/``nn.Sequential`` whose children run one after
  the other, each feeding the next: transformer layers, MobileNetV2's ``features``), the inputs (args and kwargs)
  of the first block are cached once; inside block i its groups are captured by re-running only block i on the
  cached inputs, stopping at the group's first layer; then block i's outputs become block i+1's inputs.
- Anything else (layers before/after the stack, models without one) runs the whole model per group, stopping
  (an exception raised by a hook) right after the group's input is seen.
- Groups whose recipe needs no calibration are compressed without any forward pass, and nothing runs after the
  last group that needs H.
- Inside a block, each later run returns the outputs of the block's already-compressed linear/conv layers from
  the run that first computed them (same batch, same call, same weights, same input: the same tensor), so each
  layer's matrix product runs about once per batch instead of once per later group (:class:`_Memo`; outputs
  mutated in place downstream are detected by their version counter and recomputed; at most
  ``MEMO_BYTES`` held).

A module called more than once per forward contributes the inputs of its first call only. Padded tokens
(``attention_mask`` 0 in a dict batch) are left out of the Gram matrices of linear layers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from pvq.layerwise import unfold_conv_input

__all__ = ["Target", "run_sequential", "gram_of_input", "run_batch"]

Progress = Callable[[str], None]
# compress(group, H or None): compress every target of the group (H (groups, n, n) float64) and write the
# dequantized weights into the model in place
Compress = Callable[[Sequence["Target"], "torch.Tensor | None"], None]


class _Stop(Exception):
    """Raised by a capture hook once the input it waits for is seen: the rest of the forward is skipped."""


@dataclass(eq=False)
class Target:
    """One weight to compress: ``name`` its state-dict key, ``module`` the layer owning it, ``calibrated``
    whether its recipe needs H (set by the caller)."""

    name: str
    module_name: str
    module: nn.Module
    calibrated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def capturable(self) -> bool:
        return isinstance(self.module, (nn.Linear, nn.Conv1d, nn.Conv2d))


def run_batch(model: nn.Module, batch: Any) -> Any:
    """``model(**batch)`` for a dict, ``model(*batch)`` for a tuple/list, else ``model(batch)``."""
    if isinstance(batch, dict):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(*batch)
    return model(batch)


def _token_mask(batch: Any) -> torch.Tensor | None:
    return batch.get("attention_mask") if isinstance(batch, dict) else None


def gram_of_input(module: nn.Module, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """X^T X (groups, n, n) float64 of one batch of ``module``'s inputs (conv: unfolded, one Gram per group)."""
    pointwise = isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and module.stride == (1, 1)
    if pointwise and module.padding in ((0, 0), "valid"):  # a 1x1 conv: no unfolding needed
        g = module.groups
        X = x.detach().permute(0, 2, 3, 1).reshape(-1, g, x.shape[1] // g).transpose(0, 1).float()
    elif isinstance(module, (nn.Conv1d, nn.Conv2d)):
        X = unfold_conv_input(module, x.detach()).float()  # (groups, samples, n)
    else:
        x = x.detach()
        if mask is not None and x.dim() == 3 and tuple(mask.shape) == tuple(x.shape[:2]):
            x = x[mask.bool()]
        X = x.reshape(1, -1, x.shape[-1]).float()
    # float32 products per batch (fast), summed over batches in float64
    return torch.bmm(X.transpose(1, 2), X).double()


MEMO_BYTES = 512 * 2**20


class _Memo:
    """Outputs of a block's frozen (already compressed) target layers, per calibration batch and call number.

    A frozen layer's input in a later re-run of the block is the one it had before (everything called before
    it is frozen or untouched, and the forward is deterministic in eval mode), so its output is too: the layer's
    ``forward`` is replaced (an instance attribute, removed by :meth:`close`) by a lookup. A stored tensor
    whose version counter moved (mutated in place downstream) is recomputed. Holds at most ``budget`` bytes.
    """

    def __init__(self, budget: int | None = None) -> None:
        self.budget = MEMO_BYTES if budget is None else budget
        self.bytes, self.batch = 0, 0
        self.store: dict[tuple[int, int, int], tuple[torch.Tensor, int]] = {}
        self.calls: dict[int, int] = {}
        self.modules: list[nn.Module] = []

    def start(self, batch: int) -> None:
        """A run of the block on calibration batch ``batch`` begins."""
        self.batch = batch
        self.calls.clear()

    def freeze(self, module: nn.Module) -> None:
        if "forward" in vars(module):
            return  # frozen already (or a user's own instance forward: leave it alone)
        original = module.forward
        mid = id(module)

        def forward(*args: Any, **kwargs: Any) -> Any:
            n = self.calls.get(mid, 0)
            self.calls[mid] = n + 1
            key = (mid, self.batch, n)
            hit = self.store.get(key)
            if hit is not None and hit[0]._version == hit[1]:
                return hit[0]
            out = original(*args, **kwargs)
            if hit is not None:
                self.bytes -= hit[0].nbytes
                del self.store[key]
            if isinstance(out, torch.Tensor) and self.bytes + out.nbytes <= self.budget:
                self.store[key] = (out, out._version)
                self.bytes += out.nbytes
            return out

        module.forward = forward  # type: ignore[method-assign]
        self.modules.append(module)

    def close(self) -> None:
        for m in self.modules:
            del m.forward  # back to the class method
        self.modules.clear()
        self.store.clear()
        self.bytes = 0


class _Capture:
    """Accumulate the Gram of ``module``'s input over calls; raise :class:`_Stop` after each when ``stop``."""

    def __init__(self, module: nn.Module, stop: bool) -> None:
        self.module, self.stop = module, stop
        self.G: torch.Tensor | None = None
        self.mask: torch.Tensor | None = None
        self._handle: Any = None

    def _add(self, x: torch.Tensor) -> None:
        g = gram_of_input(self.module, x, self.mask)
        self.G = g if self.G is None else self.G + g
        if self.stop:
            raise _Stop

    def __enter__(self) -> _Capture:
        mod = self.module
        if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
            # the input as the convolution sees it, after any padding a subclass adds in its forward
            original = mod._conv_forward

            def conv_forward(
                x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
            ) -> torch.Tensor:
                self._add(x)
                return original(x, weight, bias)

            mod._conv_forward = conv_forward  # type: ignore[method-assign]
        else:
            self._handle = mod.register_forward_pre_hook(lambda _m, args: self._add(args[0]))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.remove()
        elif "_conv_forward" in vars(self.module):
            del self.module._conv_forward  # back to the class method


@dataclass
class _Plan:
    """What discovery found: target groups in call order and, when valid, the block stack."""

    groups: list[list[Target]]
    unreached: list[Target]
    blocks: list[nn.Module] | None = None
    block_of: dict[int, int] = field(default_factory=dict)  # group index -> block index, -1 before, -2 after


def _same_input_kind(a: nn.Module, b: nn.Module) -> bool:
    if isinstance(a, nn.Linear) and isinstance(b, nn.Linear):
        return a.in_features == b.in_features
    if isinstance(a, (nn.Conv1d, nn.Conv2d)) and type(a) is type(b):
        keys = ("in_channels", "kernel_size", "stride", "padding", "dilation", "groups", "padding_mode")
        return all(getattr(a, k) == getattr(b, k) for k in keys)
    return False


def _stack_candidates(model: nn.Module, targets: Sequence[Target]) -> list[tuple[str, list[nn.Module]]]:
    """ModuleLists/Sequentials with >= 2 children holding calibrated targets, most such targets first."""
    names = [t.module_name for t in targets if t.calibrated]
    out = []
    for name, mod in model.named_modules():
        if not isinstance(mod, (nn.ModuleList, nn.Sequential)) or len(mod) < 2:
            continue
        prefix = f"{name}." if name else ""
        kids = [f"{prefix}{k}" for k, _ in mod.named_children()]
        # children that contain targets (a stack of bare layers gains nothing from caching block inputs)
        holding = [k for k in kids if any(n.startswith(k + ".") for n in names)]
        if len(holding) >= 2:
            score = sum(any(n.startswith(k + ".") for k in kids) for n in names)
            out.append((score, name, list(mod.children())))
    out.sort(key=lambda s: -s[0])
    return [(n, kids) for _, n, kids in out]


def _first(out: Any) -> Any:
    return out[0] if isinstance(out, (tuple, list)) and out else out


def _discover(model: nn.Module, targets: Sequence[Target], batch: Any) -> _Plan:
    """One forward of ``batch``: call order of targets, input sharing, and whether a block stack is valid."""
    events: list[tuple[str, Any, Any]] = []  # (kind, key, payload) in call order
    handles = []
    by_module: dict[int, list[Target]] = {}
    for t in targets:
        by_module.setdefault(id(t.module), []).append(t)
    seen: set[int] = set()

    def target_hook(mod: nn.Module, args: tuple[Any, ...]) -> None:
        if id(mod) not in seen:
            seen.add(id(mod))
            events.append(("target", id(mod), args[0] if args else None))

    for mid_targets in by_module.values():
        handles.append(mid_targets[0].module.register_forward_pre_hook(target_hook))
    candidates = _stack_candidates(model, targets)
    kids_all = [k for _, kids in candidates for k in kids]
    for kid in {id(k): k for k in kids_all}.values():
        handles.append(
            kid.register_forward_pre_hook(
                lambda m, args, kwargs: events.append(("enter", id(m), args[0] if args else None)),
                with_kwargs=True,
            )
        )
        handles.append(
            kid.register_forward_hook(lambda m, _a, out: events.append(("exit", id(m), _first(out))))
        )
    try:
        with torch.no_grad():
            run_batch(model, batch)
    finally:
        for h in handles:
            h.remove()
    order = [e for e in events if e[0] == "target"]
    # groups: consecutive targets reading the same input tensor of the same kind share one H
    groups: list[list[Target]] = []
    last_input: Any = None
    for _, mid, x in order:
        ts = by_module[mid]
        if (
            groups
            and x is not None
            and x is last_input
            and all(t.capturable for t in ts)
            and _same_input_kind(groups[-1][0].module, ts[0].module)
        ):
            groups[-1].extend(ts)
        else:
            groups.append(list(ts))
        last_input = x
    reached = {id(t) for g in groups for t in g}
    unreached = [t for t in targets if id(t) not in reached]
    plan = _Plan(groups, unreached)
    for _, kids in candidates:
        block_of = _check_stack(events, kids, groups)
        if block_of is not None:
            plan.blocks, plan.block_of = kids, block_of
            break
    return plan


def _check_stack(
    events: list[tuple[str, Any, Any]], kids: list[nn.Module], groups: list[list[Target]]
) -> dict[int, int] | None:
    """Group -> block map when the children run once each, in order, each feeding the next, with every target
    first called before the first, inside one, or after the last block; else ``None``."""
    ids = [id(k) for k in kids]
    pos = {i: n for n, i in enumerate(ids)}
    enters = [(n, e) for n, e in enumerate(events) if e[0] == "enter" and e[1] in pos]
    exits = [(n, e) for n, e in enumerate(events) if e[0] == "exit" and e[1] in pos]
    if [e[1] for _, e in enters] != ids or [e[1] for _, e in exits] != ids:
        return None
    for b in range(len(kids) - 1):
        if exits[b][1][2] is None or exits[b][1][2] is not enters[b + 1][1][2]:
            return None
        if exits[b][0] > enters[b + 1][0]:
            return None
    target_pos = {}
    for n, e in enumerate(events):
        if e[0] == "target":
            target_pos[e[1]] = n
    block_of: dict[int, int] = {}
    for gi, g in enumerate(groups):
        p = target_pos[id(g[0].module)]
        if p < enters[0][0]:
            block_of[gi] = -1
        elif p > exits[-1][0]:
            block_of[gi] = -2
        else:
            inside = [b for b in range(len(kids)) if enters[b][0] < p < exits[b][0]]
            if not inside:
                return None  # called between two blocks
            block_of[gi] = inside[0]
    return block_of


def _capture_full(model: nn.Module, first: nn.Module, batches: Sequence[Any]) -> torch.Tensor | None:
    """H of ``first``'s input over all batches, running the whole model and stopping right after it."""
    cap = _Capture(first, stop=True)
    with cap, torch.no_grad():
        for batch in batches:
            cap.mask = _token_mask(batch)
            try:
                run_batch(model, batch)
            except _Stop:
                pass
    return cap.G


def run_sequential(
    model: nn.Module,
    targets: Sequence[Target],
    batches: Sequence[Any],
    compress: Compress,
    progress: Progress | None = None,
) -> dict[str, str]:
    """Compress ``targets`` of ``model`` (in place, through ``compress``) in forward order with sequential H.

    Returns notes: target name -> why it got no H although its recipe needs one (never called). Without any
    calibrated target (or without ``batches``) nothing is run and every target gets ``H = None``.
    """
    say = progress or (lambda _m: None)
    notes: dict[str, str] = {}
    if not any(t.calibrated for t in targets) or not batches:
        for t in targets:
            compress([t], None)
        return notes
    was_training = model.training
    model.eval()
    cfg = getattr(model, "config", None)
    use_cache = getattr(cfg, "use_cache", None)
    if use_cache:
        cfg.use_cache = False  # re-running blocks must not grow a key/value cache
    try:
        plan = _discover(model, targets, batches[0])
        mode = f"block stack of {len(plan.blocks)}" if plan.blocks else "whole-model forwards"
        say(f"sequential capture: {len(plan.groups)} groups, {mode}, {len(batches)} calibration batches")
        for t in plan.unreached:
            if t.calibrated:
                notes[t.name] = "never called on the calibration inputs"
            compress([t], None)
        last = max((i for i, g in enumerate(plan.groups) if any(t.calibrated for t in g)), default=-1)
        if plan.blocks is None:
            for i, g in enumerate(plan.groups):
                H = (
                    _capture_full(model, g[0].module, batches)
                    if i <= last and any(t.calibrated for t in g)
                    else None
                )
                compress(g, H)
        else:
            _run_blocks(model, plan, batches, compress, last)
    finally:
        if use_cache:
            cfg.use_cache = use_cache
        model.train(was_training)
    return notes


def _run_blocks(model: nn.Module, plan: _Plan, batches: Sequence[Any], compress: Compress, last: int) -> None:
    assert plan.blocks is not None
    blocks = plan.blocks
    groups = plan.groups
    for i, g in enumerate(groups):
        if plan.block_of[i] == -1:
            need = i <= last and any(t.calibrated for t in g)
            compress(g, _capture_full(model, g[0].module, batches) if need else None)
    inside = [i for i, g in enumerate(groups) if plan.block_of[i] >= 0]
    if inside and min(inside) <= last:
        cached = _cache_block_inputs(model, blocks[0], batches)
        masks = [_token_mask(b) for b in batches]
        for b, block in enumerate(blocks):
            mine = [i for i in inside if plan.block_of[i] == b]
            memo = _Memo()
            try:
                for i in mine:
                    g = groups[i]
                    H = None
                    if i <= last and any(t.calibrated for t in g):
                        cap = _Capture(g[0].module, stop=True)
                        with cap, torch.no_grad():
                            for n, ((args, kwargs), mask) in enumerate(zip(cached, masks, strict=True)):
                                cap.mask = mask
                                memo.start(n)
                                try:
                                    block(*args, **kwargs)
                                except _Stop:
                                    pass
                        H = cap.G
                    compress(g, H)
                    for t in g:
                        if t.capturable:
                            memo.freeze(t.module)
                later = any(
                    plan.block_of[i] > b for i in inside if i <= last and any(t.calibrated for t in groups[i])
                )
                if b + 1 < len(blocks) and later:  # block b's outputs are block b+1's inputs
                    with torch.no_grad():
                        outs = []
                        for n, (a, k) in enumerate(cached):
                            memo.start(n)
                            outs.append(((_first(block(*a, **k)),) + tuple(a[1:]), k))
                        cached = outs
            finally:
                memo.close()
    else:
        for i in inside:
            compress(groups[i], None)
    for i, g in enumerate(groups):
        if plan.block_of[i] == -2:
            need = i <= last and any(t.calibrated for t in g)
            compress(g, _capture_full(model, g[0].module, batches) if need else None)


def _cache_block_inputs(
    model: nn.Module, block: nn.Module, batches: Sequence[Any]
) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """(args, kwargs) of ``block``'s call for each batch; key/value caches dropped."""
    cached: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def hook(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        kw = dict(kwargs)
        for k in ("past_key_value", "past_key_values"):
            if k in kw:
                kw[k] = None
        if "use_cache" in kw:
            kw["use_cache"] = False
        cached.append((tuple(args), kw))
        raise _Stop

    handle = block.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            for batch in batches:
                try:
                    run_batch(model, batch)
                except _Stop:
                    pass
    finally:
        handle.remove()
    if len(cached) != len(batches):
        raise RuntimeError("the first block was not called on every calibration batch")
    return cached
