"""`pvq finetune SOURCE --method quant|prune|both --bits B`: compress a model with fine-tuning, report accuracy."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import typer

from pvq.errors import PvqInputError

_SMALL = "small_resnet"


def register(app: typer.Typer) -> None:
    @app.command("finetune")
    def finetune_cmd(
        source: str = typer.Argument(
            _SMALL,
            help="small_resnet (pvq's Fashion-MNIST ResNet, trained once and cached) | a state-dict file "
            "(.pt/.pth) of that SmallResNet | a bundled ImageNet CNN (mobilenet_v2, efficientnet_lite0) "
            "transferred to the data first",
        ),
        method: str = typer.Option(..., help="quant (LSQ QAT) | prune (gradual magnitude) | both | none"),
        bits: int = typer.Option(..., help="bit-width; pruning alone uses sparsity 1 - bits/16"),
        epochs: int = typer.Option(4, help="fine-tuning epochs"),
        lr: float = typer.Option(0.01, help="learning rate of the weights (SGD, cosine decay)"),
        sparsity: float = typer.Option(None, help="pruning sparsity (default 1 - bits/16; for --method both)"),
        schedule: str = typer.Option(
            "gradual", help="gradual (Zhu & Gupta, 75 % ramp) | oneshot | iterative | lottery (IMP + rewind)"
        ),
        criterion: str = typer.Option("magnitude", help="pruning saliency: magnitude | snip | grasp | fisher"),
        nm: str = typer.Option("", "--nm", help="N:M pattern instead of a sparsity, e.g. 2:4 (needs --schedule oneshot)"),
        channel_keep: float = typer.Option(
            None, help="structured pruning first: keep at most this fraction (0..1) of the weights as whole channels"
        ),
        cycles: int = typer.Option(3, help="iterative: prune steps; lottery: training rounds (>= 2)"),
        kd_alpha: float = typer.Option(0.0, help="knowledge distillation weight (0: off; teacher = the source model)"),
        kd_temperature: float = typer.Option(4.0, help="distillation temperature"),
        per_channel: bool = typer.Option(False, "--per-channel", help="LSQ with one scale per output channel"),
        asymmetric: bool = typer.Option(False, "--asymmetric", help="LSQ+ with a learned offset (unsigned grid)"),
        ends_bits: int = typer.Option(None, help="quantize the first and last layer at this many bits (e.g. 8)"),
        mixed_precision: bool = typer.Option(
            False, "--mixed-precision",
            help="per-layer LSQ widths from measured sensitivity at the real bits of uniform --bits",
        ),
        data: str = typer.Option("fashion-mnist", help="fashion-mnist | an image folder (one subfolder per class)"),
        data_root: str = typer.Option("", help="folder with the Fashion-MNIST IDX files (default: the system one)"),
        train_size: int = typer.Option(4096, help="fine-tuning subset size (0: all)"),
        val_size: int = typer.Option(5000, help="held-out validation examples from the training data"),
        test_size: int = typer.Option(0, help="test examples evaluated (0: the whole test split)"),
        batch_size: int = typer.Option(128, help="batch size"),
        size: int = typer.Option(64, help="input size for bundled ImageNet CNNs"),
        device: str = typer.Option("cpu", help="cpu | cuda"),
        threads: int = typer.Option(0, help="torch CPU threads (0: torch's default)"),
        seed: int = typer.Option(0, help="random seed"),
        out_dir: str = typer.Option("pvq-finetune", "--out", help="output folder (checkpoints, rows, integer export)"),
        resume: bool = typer.Option(False, "--resume", help="continue from OUT's last epoch checkpoint"),
        baseline_finetune: bool = typer.Option(
            False, "--baseline-finetune",
            help="also fine-tune the uncompressed model for the same epochs (method none, same lr/batch/seed) so "
            "the baseline row is comparable; default: the baseline is the source as loaded, not fine-tuned",
        ),
        json_out: bool = typer.Option(False, "--json", help="print the result rows as JSON on stdout"),
    ) -> None:
        """Fine-tune SOURCE with QAT, gradual pruning or both; test accuracy, checkpoints per epoch."""
        import torch

        out = Path(out_dir)
        from pvq._io import append_jsonl, atomic_write_text
        from pvq._progress import enable_progress
        from pvq.cli._common import check_seed, print_json_rows
        from pvq.training import (
            FinetuneConfig,
            evaluate_accuracy,
            export_quantized,
            finetune,
            fixed_subset,
            init_distributed,
            save_quantized,
        )

        check_seed(seed)
        if threads < 0:
            raise PvqInputError(f"--threads: must be >= 0 (0: torch's default), got {threads}")
        if not 8 <= size <= 4096:
            raise PvqInputError(f"--size: must be in 8..4096 pixels, got {size}")
        toolbox = toolbox_options(method, schedule, criterion, nm, channel_keep, cycles, kd_alpha, kd_temperature,
                                  per_channel, asymmetric, ends_bits, mixed_precision, bits)
        try:
            cfg = FinetuneConfig(method=method, bits=bits, epochs=epochs, lr=lr, sparsity=sparsity,
                                 schedule=schedule, batch_size=batch_size, seed=seed, device=device, **toolbox)
        except ValueError as exc:
            raise PvqInputError(f"pvq finetune: {exc}") from None
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise PvqInputError("--device cuda: no CUDA device available")
        if train_size < 0 or val_size < 1 or test_size < 0:
            raise PvqInputError("--train-size and --test-size must be >= 0 and --val-size >= 1")
        if threads:
            torch.set_num_threads(threads)
        dist = init_distributed(device)
        if dist.world > 1 and device.startswith("cuda"):
            cfg = FinetuneConfig(**{**cfg.to_json(), "device": f"cuda:{dist.local_rank}"})
        if dist.rank == 0:  # before any work: OUT is writable, not the source's folder, and its checkpoint ours
            _claim_checkpoint(out, source, resume, cfg, data, data_root, train_size, val_size, size)
        torch.manual_seed(seed)
        enable_progress(not json_out and dist.rank == 0)
        t0 = time.perf_counter()
        model, train, val, test, origin = _load(source, data, data_root or None, train_size or None, val_size, size,
                                                seed, cfg.device)
        test = fixed_subset(test, test_size or None, seed=seed + 2)
        if mixed_precision:
            cfg = _mixed_config(model, train, cfg)
        orig_acc = evaluate_accuracy(model, test, device=cfg.device)
        from contextlib import nullcontext

        from pvq._outdir import open_output

        with open_output(out, sources=[source]) if dist.rank == 0 else nullcontext():  # one writer
            res = finetune(model, train, cfg, checkpoint_dir=out / "checkpoint", resume=resume)
        if baseline_finetune:  # same steps and recipe, no compression; not checkpointed (reruns on --resume)
            bcfg = FinetuneConfig(method="none", bits=cfg.bits, epochs=epochs, lr=lr, batch_size=batch_size,
                                  seed=seed, device=cfg.device, kd_alpha=cfg.kd_alpha,
                                  kd_temperature=cfg.kd_temperature)
            orig_acc = evaluate_accuracy(finetune(model, train, bcfg).model, test, device=cfg.device)
        if dist.rank != 0:
            return
        val_acc = evaluate_accuracy(res.model, val, device=cfg.device)
        test_acc = evaluate_accuracy(res.model, test, device=cfg.device)
        base = {"model": origin["model"], "epochs": epochs, "metric": "accuracy", "split": "test"}
        label = baseline_label(epochs, baseline_finetune)
        rows = [
            {**base, "method": "none", "bits": 32, "sparsity": 0.0, "epochs": epochs if baseline_finetune else 0,
             "value": orig_acc, "finetuned": baseline_finetune, "baseline_label": label},
            {**base, "method": method, "bits": bits, "sparsity": res.sparsity, "value": test_acc,
             "val_accuracy": val_acc, "lr": lr, "step_seconds": res.step_seconds, "finetuned": epochs > 0},
        ]
        try:
            out.mkdir(parents=True, exist_ok=True)
            append_jsonl(out / "finetune.jsonl", rows)
            atomic_write_text(out / "config.json", json.dumps({"source": source, "data": data, "origin": origin,
                                                               "finetune": cfg.to_json(), "history": res.history,
                                                               "seconds": time.perf_counter() - t0}, indent=1))
            _save_torch(out / "model_state.pt", {k: v.cpu() for k, v in res.model.state_dict().items()})
            if method in ("quant", "both"):
                save_quantized(out / "quantized.safetensors", export_quantized(res.model))
        except OSError as exc:  # the result is not lost: its rows go to stdout, the checkpoint stays
            print_json_rows(rows)
            raise PvqInputError(
                f"--out: cannot write into {out} ({exc.strerror or exc}); the result rows went to stdout and "
                f"the last epoch's checkpoint is in {out / 'checkpoint'}"
            ) from None
        if json_out:
            print_json_rows(rows)
        else:
            print(f"{origin['model']}: {label}: {orig_acc:.2f} %; {method} {bits} bits (sparsity {res.sparsity:.3f}), "
                  f"fine-tuned {epochs} epoch{'' if epochs == 1 else 's'}: {test_acc:.2f} % test accuracy -> {out}", file=sys.stderr)


def baseline_label(epochs: int, finetuned: bool) -> str:
    """What the baseline row is, for the CLI line and the ``baseline_label`` field of its JSON row."""
    n = f"{epochs} epoch{'' if epochs == 1 else 's'}"
    if finetuned:
        return f"uncompressed, fine-tuned the same {n}"
    return f"uncompressed, not fine-tuned ({n} fewer than the compressed model)"


def toolbox_options(method: str, schedule: str, criterion: str, nm: str, channel_keep: float | None, cycles: int,
                    kd_alpha: float, kd_temperature: float, per_channel: bool, asymmetric: bool,
                    ends_bits: int | None, mixed_precision: bool = False, bits: int = 4) -> dict:
    """The toolbox flags as ``FinetuneConfig`` options (only those that differ from the defaults), each checked
    with a one-line error naming its flag; options that the chosen method would silently ignore are refused."""
    import math

    from pvq.training import CRITERIA, parse_nm

    pruning, quant = method in ("prune", "both"), method in ("quant", "both")
    out: dict = {}
    if criterion not in CRITERIA:
        raise PvqInputError(f"--criterion: must be one of {', '.join(CRITERIA)}, got {criterion!r}")
    if criterion != "magnitude":
        if not pruning:
            raise PvqInputError("--criterion: ranks weights for pruning; needs --method prune or both")
        out["criterion"] = criterion
    if nm:
        try:
            parse_nm(nm)
        except ValueError as exc:
            raise PvqInputError(f"--nm: {exc}") from None
        if not pruning or schedule != "oneshot":
            raise PvqInputError(f"--nm {nm}: needs --method prune or both and --schedule oneshot")
        out["nm"] = nm
    if channel_keep is not None:
        if not (0.0 < channel_keep < 1.0):
            raise PvqInputError(f"--channel-keep: must be in (0, 1) (the fraction of weights kept), got {channel_keep}")
        out["channel_keep"] = channel_keep
    if cycles != 3:
        if cycles < 1 or (schedule == "lottery" and cycles < 2):
            raise PvqInputError(f"--cycles: must be >= 1 (>= 2 for --schedule lottery), got {cycles}")
        if schedule not in ("iterative", "lottery"):
            raise PvqInputError("--cycles: only with --schedule iterative or lottery")
        out["cycles"] = cycles
    if schedule == "lottery" and not pruning:
        raise PvqInputError("--schedule lottery: iterative magnitude pruning; needs --method prune or both")
    if not (math.isfinite(kd_alpha) and 0.0 <= kd_alpha <= 1.0):
        raise PvqInputError(f"--kd-alpha: must be in [0, 1] (0: no distillation), got {kd_alpha}")
    if not (math.isfinite(kd_temperature) and kd_temperature > 0):
        raise PvqInputError(f"--kd-temperature: must be > 0, got {kd_temperature}")
    if kd_alpha > 0:
        out.update(kd_alpha=kd_alpha, kd_temperature=kd_temperature)
    elif kd_temperature != 4.0:
        raise PvqInputError("--kd-temperature: only with --kd-alpha > 0")
    for flag, on in (("--per-channel", per_channel), ("--asymmetric", asymmetric),
                     ("--ends-bits", ends_bits is not None)):
        if on and not quant:
            raise PvqInputError(f"{flag}: an LSQ option; needs --method quant or both")
    if ends_bits is not None and not 1 <= ends_bits <= 16:
        raise PvqInputError(f"--ends-bits: must be in 1..16, got {ends_bits}")
    out.update({k: v for k, v in (("per_channel", per_channel), ("asymmetric", asymmetric)) if v})
    if ends_bits is not None:
        out["ends_bits"] = ends_bits
    if mixed_precision:
        if method != "quant":
            raise PvqInputError("--mixed-precision: per-layer LSQ widths; needs --method quant")
        if ends_bits is not None or channel_keep is not None:
            raise PvqInputError("--mixed-precision: chooses every layer's width; drop --ends-bits/--channel-keep")
        if not 2 <= bits <= 8:
            raise PvqInputError(f"--mixed-precision: --bits must be in 2..8 (the measured widths), got {bits}")
    return out


def _mixed_config(model, train, cfg):  # noqa: ANN001, ANN202
    """``cfg`` with per-layer widths measured on up to 256 training inputs (never validation or test), at the
    real bits (FP16 scales counted) of uniform LSQ at ``cfg.bits``."""
    from dataclasses import replace

    import torch

    from pvq.evaluate._sensitivity import uniform_bits
    from pvq.training import compressible_layers, sensitivity_layer_bits

    inputs = torch.stack([train[i][0] for i in range(min(256, len(train)))]).to(cfg.device)
    shapes = {n: tuple(m.weight.shape) for n, m in compressible_layers(model)}
    plan = sensitivity_layer_bits(model, inputs, uniform_bits(f"int{cfg.bits}:tensor:rtn", shapes))
    return replace(cfg, layer_bits=plan.layer_bits)


def _save_torch(path: Path, obj: object) -> None:
    """``torch.save`` atomically (a killed run never leaves a half-written file under the final name)."""
    import io

    import torch

    from pvq._io import atomic_write_bytes

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def _claim_checkpoint(out, source, resume, cfg, data, data_root, train_size, val_size, size) -> None:  # noqa: ANN001
    """Bind OUT/checkpoint/checkpoint.pt to the source's content, the data options and ``cfg``: a
    ``--resume`` over a checkpoint made from other inputs is refused; a run without ``--resume``
    starts afresh (the old checkpoint is deleted)."""
    from pvq._outdir import open_output, source_fingerprint
    from pvq.training._finetune import resume_key

    key = {
        "source_content": source_fingerprint(source),
        "data": data if data == "fashion-mnist" else source_fingerprint(data, hash_content=False),
        "data_root": data_root,
        "train_size": train_size,
        "val_size": val_size,
        "size": size,
        "finetune": json.loads(resume_key(cfg)),
    }
    with open_output(out, sources=[source]) as folder:
        folder.claim("checkpoint/checkpoint.pt", key, fresh=not resume)


def _load(source, data, data_root, train_size, val_size, size, seed, device):  # noqa: ANN001, ANN202
    """(model, train subset, val, test, origin info) for SOURCE on DATA."""
    import torch

    from pvq.training import fixed_subset, train_val_split

    from_file = _small_resnet_from_file(Path(source)) if source.endswith((".pt", ".pth")) else None
    if data == "fashion-mnist":
        from pvq.data import fashion_mnist

        full, test = fashion_mnist("train", root=data_root), fashion_mnist("test", root=data_root)
    else:
        from pvq.data import image_folder

        ds = image_folder(data, size=size if source != _SMALL else 28, normalize=False)
        if len(ds) < 3:
            raise PvqInputError(f"--data {data}: need at least 3 images")
        n_test = max(1, len(ds) // 10)
        full, test = train_val_split(ds, n_test, seed=seed + 11)
        val_size = min(val_size, max(1, len(full) // 10))
    if len(full) <= val_size:
        raise PvqInputError(f"--val-size {val_size}: the training data has only {len(full)} examples")
    labels = full.tensors[1] if hasattr(full, "tensors") else torch.tensor([int(y) for _, y in full])
    num_classes = int(labels.max()) + 1
    train_all, val = train_val_split(full, val_size, seed=seed)
    train = fixed_subset(train_all, train_size, seed=seed + 3)
    if source == _SMALL:
        from pvq.training import PretrainConfig, pretrain_small_resnet

        if data != "fashion-mnist":
            raise PvqInputError("small_resnet is pretrained on Fashion-MNIST only; pass a bundled CNN for --data DIR")
        # the table1 cpu preset's pretraining (same data tag, so the cached model is shared)
        pcfg = PretrainConfig(widths=(16, 32, 64), epochs=3, seed=seed)
        model, info = pretrain_small_resnet(train_all, val, pcfg, data_tag=f"fmnist:val{val_size}:seed{seed}:n{len(train_all)}",
                                            device=device)
        return model, train, val, test, {"model": "small_resnet_fmnist", **info}
    if from_file is not None:
        return from_file.to(device), train, val, test, {"model": Path(source).stem, "path": source}
    try:
        from pvq.models import create_model
    except ImportError:
        raise PvqInputError(f"{source}: bundled models are not available in this build") from None
    from pvq.training._transfer import transfer_train

    try:
        base = create_model(source, pretrained=True)
    except (KeyError, ValueError) as exc:
        raise PvqInputError(f"{source}: unknown model ({exc})") from None
    model, info = transfer_train(base, train, val, num_classes=num_classes, size=size, epochs=1, seed=seed,
                                 device=device)
    return model, train, val, test, {"model": f"{source}_transfer", **info}


def _small_resnet_from_file(path: Path):  # noqa: ANN202
    """A SmallResNet from its state dict; widths/blocks inferred from the keys."""
    from pvq.models._small_resnet import small_resnet_from_file

    return small_resnet_from_file(path)
