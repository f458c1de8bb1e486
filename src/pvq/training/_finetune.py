"""The fine-tune loop: LSQ QAT, gradual magnitude pruning, or both, with equal epochs.

Recipe (paper §5, App. G): the model's weights are trained by SGD (or Adam) with the method's learning
rate; for QAT the per-tensor LSQ scales have their own Adam optimizer (1e-5); for pruning the masks
follow a sparsity schedule (gradual over the first 75 % of the steps, then fixed). BN stays unfolded;
its statistics are re-estimated on training batches after training. Optionally, after every epoch
(and before the first), layer activations on a fixed batch are compared with the original model's
(SNR, linear CKA; App. I). A checkpoint is written after every epoch; ``resume=True`` continues from it.

The guide's toolbox (issue 15) as options of the same loop: pruning ``criterion`` (magnitude, snip, grasp,
fisher; ``pvq.training.saliency``), ``nm`` masks (2:4, 4:8, one-shot, pattern kept), structured channel pruning
before fine-tuning (``channel_keep``; :func:`pvq.deploy.structured_prune`, so the network really shrinks), ``schedule`` lottery
(iterative magnitude pruning with rewinding), knowledge distillation from the uncompressed model
(``kd_alpha`` > 0), per-channel / asymmetric LSQ and first/last layers at ``ends_bits``.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from pvq._io import atomic_write_text
from pvq._progress import progress
from pvq.errors import PvqInputError
from pvq.training._bn import reestimate_bn
from pvq.training._criteria import CRITERIA, saliency
from pvq.training._data import dataset_len, iterate_batches
from pvq.training._ddp import DistInfo, dist_info, unwrap, wrap_ddp
from pvq.training._kd import DistillConfig, Distiller
from pvq.training._lsq import add_lsq, compressible_layers, first_last, lsq_scale_parameters
from pvq.training._nm import parse_nm, set_nm_masks
from pvq.training._prune import add_masks, model_sparsity, set_sparsity
from pvq.training._repr import capture_activations, representation_distances
from pvq.training._schedule import LotterySchedule, SparsitySchedule, make_schedule

__all__ = ["FinetuneConfig", "FinetuneResult", "finetune", "prepare_model", "prepare_from_config",
           "evaluate_accuracy", "example_input", "METHODS", "SCHEDULES"]

METHODS = ("none", "quant", "prune", "both")
SCHEDULES = ("gradual", "oneshot", "iterative", "lottery")


@dataclass(frozen=True)
class FinetuneConfig:
    """One fine-tuning run.

    ``method``: none (plain fine-tuning) | quant (LSQ at ``bits``) | prune (sparsity 1 − bits/16 unless
    ``sparsity`` is given) | both (prune to ``sparsity`` and quantize to ``bits``).

    Toolbox options (defaults = the paper's recipe): ``criterion`` ranks weights for pruning
    (magnitude | snip | grasp | fisher, scored on ``score_samples`` training examples at every mask
    update); ``nm`` = "N:M" replaces the sparsity by a one-shot N:M pattern (needs schedule oneshot);
    ``schedule`` lottery = ``cycles`` rounds with rewinding to step ``floor(rewind_fraction · round)``;
    ``kd_alpha`` > 0 distils from the uncompressed model at ``kd_temperature`` (plus ``kd_feature_weight`` ×
    MSE on the outputs of ``kd_features``); ``per_channel`` / ``asymmetric`` LSQ; ``ends_bits`` quantizes
    the first and last compressible layers at that width instead of ``bits``. ``channel_keep`` (0 < k < 1)
    first removes whole channels (torch-pruning, dependency graph handled, L1 magnitude) until at most that
    fraction of the conv/linear weights is left, then ``method`` fine-tunes the smaller dense network (none:
    plain fine-tuning at FP16/FP32; quant: LSQ on it). ``layer_bits`` ((layer, bits), ...) sets LSQ widths per
    layer (mixed precision, e.g. from :func:`pvq.training.sensitivity_layer_bits`; 16 leaves a layer in FP16),
    over ``bits``/``ends_bits``.
    """

    method: str = "quant"
    bits: int = 4
    epochs: int = 20
    lr: float = 1e-3
    batch_size: int = 128
    weight_decay: float = 1e-4
    momentum: float = 0.9
    optimizer: str = "sgd"  # sgd | adam (the model's weights)
    lr_schedule: str = "cosine"  # cosine | constant (per step)
    scale_lr: float = 1e-5  # Adam on LSQ scales (App. G)
    sparsity: float | None = None
    schedule: str = "gradual"  # gradual | oneshot | iterative
    ramp_fraction: float = 0.75
    mask_every: int = 1  # Δt of Zhu & Gupta, in optimizer steps
    bn_batches: int = 20  # BN re-estimation batches after training (0: skip)
    seed: int = 0
    device: str = "cpu"
    criterion: str = "magnitude"
    nm: str | None = None
    score_samples: int = 256
    cycles: int = 3  # iterative: prune steps; lottery: training rounds
    rewind_fraction: float = 0.1
    kd_alpha: float = 0.0
    kd_temperature: float = 4.0
    kd_feature_weight: float = 0.0
    kd_features: tuple[str, ...] = ()
    per_channel: bool = False
    asymmetric: bool = False
    ends_bits: int | None = None
    channel_keep: float | None = None
    layer_bits: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "kd_features", tuple(self.kd_features))  # a JSON list round-trips
        object.__setattr__(self, "layer_bits", tuple((str(n), int(b)) for n, b in self.layer_bits))
        if any(not 1 <= b <= 16 for _, b in self.layer_bits):
            raise ValueError(f"layer_bits: every width must be in 1..16, got {dict(self.layer_bits)}")
        if self.criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {CRITERIA}, got {self.criterion!r}")
        if self.nm is not None:
            parse_nm(self.nm)
            if self.schedule != "oneshot" or self.method not in ("prune", "both") or self.sparsity is not None:
                raise ValueError("nm needs method prune|both, schedule oneshot and no sparsity (N:M fixes it)")
        if self.score_samples < 1 or self.cycles < 1 or not 0.0 <= self.rewind_fraction < 1.0:
            raise ValueError("score_samples and cycles must be >= 1 and rewind_fraction in [0, 1)")
        if self.schedule == "lottery" and self.cycles < 2:
            raise ValueError("schedule lottery needs cycles >= 2 (a dense round, then pruned rounds)")
        if self.kd_alpha > 0 or self.kd_feature_weight > 0:
            self.distill_config()  # validates
        if self.channel_keep is not None:
            if not 0.0 < self.channel_keep < 1.0:
                raise ValueError(f"channel_keep must be in (0, 1), got {self.channel_keep}")
            if self.kd_feature_weight > 0:
                raise ValueError("channel_keep: feature distillation needs equal feature widths; use logits only")
        if self.ends_bits is not None and not 1 <= self.ends_bits <= 16:
            raise ValueError(f"ends_bits must be in 1..16, got {self.ends_bits}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if not 1 <= self.bits <= 16:
            raise ValueError(f"bits must be in 1..16, got {self.bits}")
        if self.epochs < 0 or self.batch_size < 1 or self.mask_every < 1 or self.bn_batches < 0:
            raise ValueError("epochs, bn_batches must be >= 0 and batch_size, mask_every >= 1")
        if not (self.lr > 0 and math.isfinite(self.lr)) or self.scale_lr < 0:
            raise ValueError(f"lr must be positive and finite, got {self.lr}")
        if self.optimizer not in ("sgd", "adam") or self.lr_schedule not in ("cosine", "constant"):
            raise ValueError("optimizer must be sgd|adam and lr_schedule cosine|constant")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.sparsity is not None and not 0.0 <= self.sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if not 0.0 <= self.ramp_fraction <= 1.0:
            raise ValueError(f"ramp_fraction must be in [0, 1], got {self.ramp_fraction}")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be cpu or cuda, got {self.device!r}")

    @property
    def target_sparsity(self) -> float:
        """The final pruning sparsity (0 for none/quant)."""
        if self.method in ("none", "quant"):
            return 0.0
        if self.nm is not None:
            n, m = parse_nm(self.nm)
            return 1.0 - n / m
        if self.sparsity is not None:
            return self.sparsity
        return 1.0 - self.bits / 16.0

    def distill_config(self) -> DistillConfig:
        return DistillConfig(alpha=self.kd_alpha, temperature=self.kd_temperature,
                             feature_weight=self.kd_feature_weight, feature_layers=self.kd_features)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["kd_features"] = list(self.kd_features)
        d["layer_bits"] = [list(x) for x in self.layer_bits]
        return d


# Options added after checkpoints existed: left out of the resume key at their defaults, so a checkpoint
# of an older pvq (made with these defaults) still resumes.
_TOOLBOX_DEFAULTS = {k: FinetuneConfig.__dataclass_fields__[k].default for k in (
    "criterion", "nm", "score_samples", "cycles", "rewind_fraction", "kd_alpha", "kd_temperature",
    "kd_feature_weight", "per_channel", "asymmetric", "ends_bits", "channel_keep")}


@dataclass
class FinetuneResult:
    """A finished run: the compressed model (parametrizations in place), per-epoch history, timings."""

    model: nn.Module
    config: FinetuneConfig
    history: list[dict[str, Any]] = field(default_factory=list)
    sparsity: float = 0.0  # fraction of zeros in compressible weights (incl. natural zeros of quantization)
    seconds: float = 0.0
    step_seconds: float = float("nan")  # mean wall time of one optimizer step


def prepare_model(model: nn.Module, method: str, bits: int, *, per_channel: bool = False,
                  asymmetric: bool = False, ends_bits: int | None = None,
                  layer_bits: Sequence[tuple[str, int]] = ()) -> nn.Module:
    """Add the method's parametrizations in place: masks (prune, both) first, then LSQ (quant, both) at
    ``bits``, first/last layers at ``ends_bits``, named layers at their ``layer_bits`` width (16: left FP16)."""
    if method in ("prune", "both"):
        add_masks(model)
    if method in ("quant", "both"):
        bits_for = first_last(model, ends_bits) if ends_bits is not None else {}
        names = {n for n, _ in compressible_layers(model)}
        unknown = [n for n, _ in layer_bits if n not in names]
        if unknown:
            raise ValueError(f"layer_bits: the model has no compressible layer {', '.join(unknown[:3])}")
        bits_for.update(dict(layer_bits))
        # width 16 in layer_bits = the layer stays FP16 (a 16-bit LSQ grid adds nothing, and its exact scale
        # search over 65,536 levels would need gigabytes)
        wrap = [n for n in names if n not in {k for k, w in layer_bits if w >= 16}]
        add_lsq(model, bits, wrap, per_channel=per_channel, asymmetric=asymmetric, bits_for=bits_for or None)
    return model


def prepare_from_config(model: nn.Module, cfg: FinetuneConfig, example: torch.Tensor | None = None) -> nn.Module:
    """``prepare_model`` with every option of ``cfg`` (to reload a run's saved state); returns the model to use.

    With ``cfg.channel_keep`` the result is a new, channel-pruned module (deterministic: the same pretrained
    model gives the same architecture) and ``example`` (one input batch, (B, ...)) is needed to trace it;
    otherwise ``model`` itself is changed in place and returned."""
    if cfg.channel_keep is not None:
        if example is None:
            raise ValueError("prepare_from_config: channel_keep needs an example input to trace the model")
        # the deployment's torch-pruning machinery: one implementation of channel pruning in pvq; any channel count
        # (round_to=None): fine-tuning compares at equal parameter count, where rounding to 8 for ONNX Runtime's
        # blocked layout (the deployment default) would make the small networks' budgets coarser
        from pvq.deploy import structured_prune

        model = structured_prune(model, example, cfg.channel_keep, round_to=None).module.train(model.training)
    return prepare_model(model, cfg.method, cfg.bits, per_channel=cfg.per_channel, asymmetric=cfg.asymmetric,
                         ends_bits=cfg.ends_bits, layer_bits=cfg.layer_bits)


def example_input(ds: Dataset) -> torch.Tensor:
    """The first input of ``ds`` as a batch of one, (1, ...): what torch-pruning traces."""
    return ds[0][0].unsqueeze(0)


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, ds: Dataset, batch_size: int = 512, device: str = "cpu") -> float:
    """Top-1 accuracy in % of ``model`` (eval mode) on ``ds`` of (input, int label) pairs."""
    was = model.training
    model.eval()
    correct = total = 0
    for xb, yb in iterate_batches(ds, batch_size, shuffle=False):
        pred = model(xb.to(device)).argmax(1)
        correct += int((pred == yb.to(device)).sum())
        total += int(yb.numel())
    model.train(was)
    if total == 0:
        raise ValueError("evaluate_accuracy: empty dataset")
    return 100.0 * correct / total


def finetune(
    model: nn.Module,
    train: Dataset,
    cfg: FinetuneConfig,
    *,
    repr_batch: torch.Tensor | None = None,
    repr_layers: Sequence[str] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    on_rewind: Callable[[nn.Module, dict[str, torch.Tensor]], None] | None = None,
) -> FinetuneResult:
    """Fine-tune a *copy* of ``model`` (a trained classifier) on ``train`` with ``cfg``'s method.

    ``repr_batch`` (B, ...) turns on representation tracking against the original model for
    ``repr_layers`` (default: every conv/linear layer). ``on_epoch`` receives each epoch's history row.
    ``on_rewind(model, early_state)`` is called after each lottery rewind (``early_state``: the
    checkpointed state dict, masks excluded).
    """
    if loss_fn is not None and (cfg.kd_alpha > 0 or cfg.kd_feature_weight > 0):
        raise ValueError("finetune: pass either loss_fn or knowledge distillation (kd_alpha), not both")
    t_start = time.perf_counter()
    device = torch.device(cfg.device)
    dist = dist_info()
    torch.manual_seed(cfg.seed)
    original = model
    model = copy.deepcopy(model).to(device)
    model = prepare_from_config(model, cfg, example_input(train).to(device) if cfg.channel_keep else None)
    loss_fn = loss_fn or nn.functional.cross_entropy
    distiller = None
    if cfg.kd_alpha > 0 or cfg.kd_feature_weight > 0:
        distiller = Distiller(original, model, cfg.distill_config())
        distiller.teacher.to(device)

    scale_params = lsq_scale_parameters(model)
    scale_ids = {id(p) for p in scale_params}
    weight_params = [p for p in model.parameters() if id(p) not in scale_ids and p.requires_grad]
    if cfg.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            weight_params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    else:
        opt = torch.optim.Adam(weight_params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scale_opt = torch.optim.Adam(scale_params, lr=cfg.scale_lr) if scale_params and cfg.scale_lr > 0 else None

    n_train = dataset_len(train)
    per_rank = math.ceil(n_train / dist.world)
    steps_per_epoch = max(1, math.ceil(per_rank / cfg.batch_size))
    total_steps = steps_per_epoch * cfg.epochs
    schedule: SparsitySchedule | None = None
    if cfg.method in ("prune", "both") and cfg.target_sparsity > 0:
        schedule = make_schedule(cfg.schedule, cfg.target_sparsity, total_steps, cfg.ramp_fraction, cfg.mask_every,
                                 cycles=cfg.cycles, rewind_fraction=cfg.rewind_fraction)
    lottery = schedule if isinstance(schedule, LotterySchedule) else None
    early: dict[str, Any] | None = None  # lottery: the rewind checkpoint (model without masks, optimizer)

    def update_masks(s: float, at: int) -> None:
        _update_masks(model, s, cfg, train, device, at)

    # Representation tracking: reference activations of the original model on a fixed batch.
    ref_acts = None
    layers: list[str] = []
    if repr_batch is not None:
        layers = list(repr_layers) if repr_layers is not None else [n for n, _ in compressible_layers(original)]
        ref_model = copy.deepcopy(original).to(device)
        ref_acts = capture_activations(ref_model, layers, repr_batch.to(device))
        del ref_model

    history: list[dict[str, Any]] = []
    start_epoch, step, current_s = 0, 0, -1.0
    ckpt = Path(checkpoint_dir) / "checkpoint.pt" if checkpoint_dir is not None else None
    if resume and ckpt is not None and ckpt.exists():
        start_epoch, step, current_s, history = _load_checkpoint(ckpt, model, opt, scale_opt, device, cfg)
    elif ref_acts is not None:
        if schedule is not None:
            current_s = schedule.sparsity_at(0)
            update_masks(current_s, 0)
        history.append(_epoch_row(0, float("nan"), model, ref_acts, layers, repr_batch, device, current_s, cfg))
        if on_epoch is not None:
            on_epoch(history[-1])

    early_file = ckpt.parent / "lottery_early.pt" if ckpt is not None and lottery is not None else None
    if early_file is not None and resume and start_epoch > 0 and early_file.exists():
        early = torch.load(early_file, map_location=device, weights_only=True)
    ddp_model = wrap_ddp(model, dist, device)
    step_time, n_timed = 0.0, 0
    for epoch in range(start_epoch, cfg.epochs):
        ddp_model.train()
        losses = []
        batches = iterate_batches(train, cfg.batch_size, shuffle=True, seed=cfg.seed * 100_003 + epoch,
                                  rank=dist.rank, world=dist.world)
        for xb, yb in progress(batches, total=steps_per_epoch, desc=f"{cfg.method} {cfg.bits}b epoch {epoch + 1}/{cfg.epochs}"):
            t0 = time.perf_counter()
            if lottery is not None and step == lottery.rewind_step and early is None:
                early = {"model": {k: v.detach().clone() for k, v in model.state_dict().items()
                                   if not k.endswith(".mask")}, "opt": copy.deepcopy(opt.state_dict())}
                if early_file is not None and dist.rank == 0:  # kept for --resume, next to the checkpoint
                    early_file.parent.mkdir(parents=True, exist_ok=True)
                    torch.save(early, early_file.with_suffix(".tmp"))
                    early_file.with_suffix(".tmp").replace(early_file)
            if schedule is not None:
                s = schedule.sparsity_at(step)
                if s != current_s:
                    update_masks(s, step)
                    if lottery is not None and step > 0 and early is not None:
                        _rewind(model, opt, early)
                        if on_rewind is not None:
                            on_rewind(model, early["model"])
                    current_s = s
            lr = cfg.lr * _lr_factor(cfg, step, total_steps, lottery)
            for g in opt.param_groups:
                g["lr"] = lr
            xd, yd = xb.to(device), yb.to(device)
            out = ddp_model(xd)
            loss = distiller(out, xd, yd) if distiller is not None else loss_fn(out, yd)
            opt.zero_grad(set_to_none=True)
            if scale_opt is not None:
                scale_opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if scale_opt is not None:
                scale_opt.step()
            losses.append(loss.item())
            step += 1
            step_time += time.perf_counter() - t0
            n_timed += 1
        if schedule is not None and lottery is None:  # the epoch's last target (exactly s_f after the ramp)
            s = schedule.sparsity_at(step)
            if s != current_s:
                update_masks(s, step)
                current_s = s
        last = epoch + 1 == cfg.epochs
        if last and cfg.bn_batches > 0:
            reestimate_bn(model, _bn_batches(train, cfg, dist), device)
        row = _epoch_row(epoch + 1, sum(losses) / max(len(losses), 1), model, ref_acts, layers, repr_batch,
                         device, current_s, cfg)
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if ckpt is not None and dist.rank == 0:
            _save_checkpoint(ckpt, model, opt, scale_opt, epoch + 1, step, current_s, history, cfg)
    if distiller is not None:
        distiller.close()
    if cfg.epochs == 0 and cfg.bn_batches > 0 and cfg.method != "none":
        if schedule is not None:
            update_masks(cfg.target_sparsity, 0)
        reestimate_bn(model, _bn_batches(train, cfg, dist), device)
    model = unwrap(ddp_model)
    return FinetuneResult(
        model=model,
        config=cfg,
        history=history,
        sparsity=model_sparsity(model),
        seconds=time.perf_counter() - t_start,
        step_seconds=step_time / n_timed if n_timed else float("nan"),
    )


def _lr_factor(cfg: FinetuneConfig, step: int, total_steps: int, lottery: LotterySchedule | None) -> float:
    """Cosine decay over the run, or over each lottery round (the schedule restarts with the rewind)."""
    if cfg.lr_schedule != "cosine":
        return 1.0
    if lottery is None:
        return 0.5 * (1 + math.cos(math.pi * step / total_steps))
    r = lottery.round_of(step)
    start = r * lottery.round_steps
    horizon = lottery.round_steps if r < lottery.rounds - 1 else max(total_steps - start, 1)
    return 0.5 * (1 + math.cos(math.pi * (step - start) / horizon))


@torch.no_grad()
def _rewind(model: nn.Module, opt: torch.optim.Optimizer, early: dict[str, Any]) -> None:
    """Restore every parameter and buffer but the masks (so the kept support gets the early weights
    exactly) and the optimizer state of the early checkpoint."""
    missing, unexpected = model.load_state_dict(early["model"], strict=False)
    if unexpected or any(not k.endswith(".mask") for k in missing):
        raise RuntimeError(f"lottery rewind: state mismatch (missing {missing}, unexpected {unexpected})")
    opt.load_state_dict(copy.deepcopy(early["opt"]))


def _score_batches(train: Dataset, cfg: FinetuneConfig, at: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``cfg.score_samples`` training examples (a seeded draw per mask update) in batches."""
    out, n = [], 0
    for xb, yb in iterate_batches(train, min(cfg.batch_size, cfg.score_samples), shuffle=True,
                                  seed=cfg.seed * 7919 + at + 13):
        take = min(cfg.score_samples - n, int(yb.numel()))
        out.append((xb[:take], yb[:take]))
        n += take
        if n >= cfg.score_samples:
            break
    return out


def _update_masks(model: nn.Module, s: float, cfg: FinetuneConfig, train: Dataset, device: torch.device,
                  at: int) -> None:
    """Masks for target sparsity ``s`` (or the N:M pattern) by ``cfg.criterion``, scored at step ``at``."""
    need_scores = cfg.criterion != "magnitude" and (s > 0 or cfg.nm is not None)
    scores = saliency(model, cfg.criterion, _score_batches(train, cfg, at), device) if need_scores else None
    if cfg.nm is not None:
        set_nm_masks(model, *parse_nm(cfg.nm), scores=scores)
    else:
        set_sparsity(model, s, scores)


def _bn_batches(train: Dataset, cfg: FinetuneConfig, dist: DistInfo):  # noqa: ANN202
    it = iterate_batches(train, cfg.batch_size, shuffle=True, seed=cfg.seed + 7, rank=dist.rank, world=dist.world)
    for i, b in enumerate(it):
        if i >= cfg.bn_batches:
            break
        yield b


def _epoch_row(epoch: int, loss: float, model: nn.Module, ref_acts, layers, repr_batch, device, s: float,
               cfg: FinetuneConfig) -> dict[str, Any]:
    row: dict[str, Any] = {"epoch": epoch, "train_loss": loss, "target_sparsity": max(s, 0.0),
                           "sparsity": model_sparsity(model), "lr": cfg.lr}
    if ref_acts is not None:
        cur = capture_activations(model, layers, repr_batch.to(device))
        row["representations"] = representation_distances(ref_acts, cur)
    return row


def resume_key(cfg: FinetuneConfig) -> str:
    """What a checkpoint must have been made with to resume from it: every option but the device."""
    d = {k: v for k, v in cfg.to_json().items() if k != "device"}
    for k, default in _TOOLBOX_DEFAULTS.items():
        if d.get(k) == default:
            del d[k]
    if not d.get("kd_features"):
        d.pop("kd_features", None)
    if not d.get("layer_bits"):
        d.pop("layer_bits", None)
    return json.dumps(d, sort_keys=True)


def _check_resume_key(state: Any, cfg: FinetuneConfig, ckpt: Path) -> None:
    """PvqInputError unless the checkpoint was made with ``cfg``'s options (resuming another run's
    checkpoint would report its model as this run's, with no training)."""
    have = state.get("resume_key") if isinstance(state, dict) else None
    if have == resume_key(cfg):
        return
    try:
        old = json.loads(have) if isinstance(have, str) else None
    except json.JSONDecodeError:
        old = None
    new = json.loads(resume_key(cfg))
    what = (
        ", ".join(f"{k} {old.get(k)!r} -> {new[k]!r}" for k in sorted(new) if old.get(k) != new[k])
        if isinstance(old, dict)
        else "no record of its options"
    )
    raise PvqInputError(
        f"--resume: {ckpt} was made with other options ({what}); start afresh (without --resume, or "
        f"delete {ckpt.parent}), or use another --out"
    )


def _load_checkpoint(ckpt: Path, model, opt, scale_opt, device, cfg: FinetuneConfig):  # noqa: ANN001, ANN202
    """Restore model/optimizer state from ``ckpt``; (epoch, step, sparsity, history up to that epoch).

    A truncated file, one written for another model or method, or a missing/corrupt ``history.json`` is a
    PvqInputError that says how to start afresh (nothing is half-loaded into a run that would then go on); so
    is a checkpoint made with other options (:func:`resume_key`)."""
    epochs = cfg.epochs
    fresh = f"; delete {ckpt.parent} or drop --resume to start afresh"
    try:
        state = torch.load(ckpt, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError/EOFError/UnpicklingError on a bad file
        raise PvqInputError(f"{ckpt}: unreadable checkpoint ({type(exc).__name__}){fresh}") from None
    need = ("model", "opt", "epoch", "step", "sparsity")
    if not isinstance(state, dict) or any(k not in state for k in need):
        raise PvqInputError(f"{ckpt}: not a pvq finetune checkpoint (needs {', '.join(need)}){fresh}")
    _check_resume_key(state, cfg, ckpt)
    try:
        epoch, step, s = int(state["epoch"]), int(state["step"]), float(state["sparsity"])
        if not (0 <= epoch <= epochs and step >= 0 and (s == -1.0 or 0.0 <= s < 1.0)):
            raise ValueError(f"epoch {epoch}, step {step}, sparsity {s}")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        if scale_opt is not None and "scale_opt" in state:
            scale_opt.load_state_dict(state["scale_opt"])
        rows = json.loads((ckpt.parent / "history.json").read_text(encoding="utf-8"))
        history = [r for r in rows if r["epoch"] <= epoch]
    except (RuntimeError, ValueError, KeyError, TypeError, OSError) as exc:
        what = " ".join(str(exc).split())[:160]
        raise PvqInputError(f"{ckpt}: checkpoint does not fit this run ({type(exc).__name__}: {what}){fresh}") from None
    return epoch, step, s, history


def _save_checkpoint(path: Path, model, opt, scale_opt, epoch: int, step: int, s: float, history, cfg) -> None:  # noqa: ANN001
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch, "step": step, "sparsity": s,
             "resume_key": resume_key(cfg)}  # fmt: skip
    if scale_opt is not None:
        state["scale_opt"] = scale_opt.state_dict()
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    atomic_write_text(path.parent / "history.json", json.dumps(history))
    tmp.replace(path)
