"""``deploy``: build every requested option of one model for one runtime, check it against its PyTorch
counterpart, measure bytes, peak memory and latency per batch size, and its quality on held-out data.

Order per option: build the artifact (ONNX export / quantization / pruning / pvq recipe + compressed-tensors
save) -> check its outputs on evaluation inputs against the PyTorch module it stands for (tolerance by format,
below) -> quality with :func:`pvq.evaluate.evaluate` vs the FP32 PyTorch model -> latency at each batch size
(warm-up, then the median of ``repeats`` calls, threads pinned). FP32 is always measured first; every
``latency_ratio`` divides by FP32's median on the same runtime and batch size, measured in the same process
interleaved with the option, call for call (:func:`pvq.deploy.time_pair`), so load drift on a shared machine
cancels out of the ratio.

A causal LM (``kind="lm"``) runs without a KV cache: ``input_ids`` (B, T) in, logits (B, T, vocab) out, every
position of a fixed-length prompt of held-out text scored at once (:data:`LM_TOKENS` tokens when timed and
checked; its quality is perplexity over 256-token windows of the held-out text).

Check tolerances (outputs = logits for classifiers, unit embeddings for encoders, next-token logits at every
position for causal LMs; ``check_agreement`` = top-1 class / next-token agreement, or mean cosine for encoders),
on the largest batch:

- FP32 export of a module (fp32, recipe, channelsK on onnxruntime): max |ONNX - PyTorch| <= 1e-4 + 1e-3 max|ref|
- FP16: max |FP16 - FP32 PyTorch| <= 1e-3 + 2e-2 max|ref|
- int8 (static, dynamic, weight-only): quantization error is the point, so no closeness bound; outputs must be
  finite and their agreement with FP32 PyTorch is reported (``check_agreement``) next to the held-out quality.

A failed bound is a PvqInputError naming the option: the model does not survive export faithfully.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pvq.deploy._export import export_onnx, input_names_of
from pvq.deploy._fold import fold_batchnorm
from pvq.deploy._measure import child_peak_mb, time_call, time_pair
from pvq.deploy._options import RUNTIMES, DeployOption, parse_option
from pvq.deploy._ort import OrtModule, ort_session, quantize_onnx
from pvq.deploy._prune import prunable_weights, structured_prune
from pvq.deploy._result import DeployResult, DeployRow
from pvq.errors import PvqInputError

__all__ = ["DeployConfig", "deploy", "evaluation_inputs"]

_HEADLINE = {"image": "agreement", "encoder": "cosine", "lm": "perplexity"}
LM_TOKENS = 64  # the fixed prompt length a causal LM is timed and checked at (tokens per sequence)
Inputs = torch.Tensor | dict[str, torch.Tensor]


@dataclass(frozen=True)
class DeployConfig:
    """``batches``: batch sizes timed; ``threads``: intra-op threads for both runtimes; ``warmup``/``repeats``:
    untimed/timed calls per batch; ``calib_batches`` x ``calib_batch_size``: calibration inputs (static int8,
    calibrated recipes); ``seed`` for calibration sampling; ``measure_memory``: run the fresh-process peak-memory
    measurement (a child Python per option)."""

    batches: tuple[int, ...] = (1, 32)
    runtime: str = "onnxruntime"
    threads: int = 1
    warmup: int = 2
    repeats: int = 10
    calib_batches: int = 4
    calib_batch_size: int = 8
    seed: int = 0
    measure_memory: bool = True

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise PvqInputError(f"--runtime: must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}")
        if not self.batches or any(b < 1 or b > 256 for b in self.batches):
            raise PvqInputError(f"--batch: batch sizes must be in 1..256, got {list(self.batches)}")
        if self.threads < 1:
            raise PvqInputError(f"--threads: must be >= 1, got {self.threads}")
        if self.repeats < 1 or self.warmup < 0:
            raise PvqInputError(
                f"--repeats/--warmup: need repeats >= 1 and warmup >= 0, got {self.repeats}/{self.warmup}"
            )
        if self.calib_batches < 1 or self.calib_batch_size < 1:
            raise PvqInputError("calib_batches/calib_batch_size: must be >= 1")


@dataclass(eq=False)
class _Built:
    """One option ready to time: ``run(inputs)`` -> output; ``module`` for evaluate; ``counterpart`` the PyTorch
    module it is checked against; ``tol`` the check's kind (``fp32``, ``fp16``, ``int8``)."""

    run: Callable[[Inputs], torch.Tensor]
    module: nn.Module
    counterpart: nn.Module
    tol: str
    bytes: int
    checkpoint_bytes: int | None = None
    weights: int | None = None
    note: str = ""
    artifact: Path | None = None


def _call(m: nn.Module, x: Inputs) -> torch.Tensor:
    with torch.inference_mode():
        return m(x) if isinstance(x, torch.Tensor) else m(**x)


def _nonzero_weights(m: nn.Module) -> int:
    return int(
        sum(
            int((mod.weight != 0).sum())
            for mod in m.modules()
            if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Linear))
        )
    )


def evaluation_inputs(name: str, kind: str, batch: int) -> Inputs:
    """``batch`` held-out evaluation inputs of a bundled model: photo views (image), tokenized held-out sentences
    (encoder), or consecutive windows of :data:`LM_TOKENS` held-out tokens ``{"input_ids": (batch, T)}`` (lm)."""
    if kind == "image":
        from pvq.evaluate import photo_views
        from pvq.models import input_spec

        spec = input_spec(name)
        views = photo_views(spec.mean, spec.std, spec.size, spec.resize)
        reps = math.ceil(batch / len(views))
        return views.repeat(reps, 1, 1, 1)[:batch].contiguous()
    if kind == "encoder":
        from pvq.evaluate import held_out_sentences
        from pvq.models import get_tokenizer
        from pvq.models._minilm import encode_batch

        sents = held_out_sentences(name, 200)
        sents = (sents * math.ceil(batch / len(sents)))[:batch]
        return encode_batch(get_tokenizer(name), sents)
    if kind == "lm":
        from pvq.evaluate import held_out_text
        from pvq.models import encode_ids, get_tokenizer

        ids = encode_ids(get_tokenizer(name), held_out_text(name)[: LM_TOKENS * batch * 12])
        n = len(ids) // LM_TOKENS
        if n < 1:
            raise PvqInputError(f"{name}: the held-out text has fewer than {LM_TOKENS} tokens")
        windows = torch.tensor(ids[: n * LM_TOKENS], dtype=torch.long).reshape(n, LM_TOKENS)
        reps = math.ceil(batch / n)
        return {"input_ids": windows.repeat(reps, 1)[:batch].contiguous()}
    raise PvqInputError(f"{name}: kind must be image, encoder or lm, got {kind!r}")


class _Logits(nn.Module):
    """A causal LM called as ``m(input_ids)`` -> logits (B, T, vocab) only: no KV cache in or out (a fixed-length
    prompt, every position scored at once), so the ONNX graph has one input and one output."""

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = lm

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        out = self.lm(input_ids=input_ids)
        return out.logits if hasattr(out, "logits") else out


def _file_bytes(p: Path) -> int:
    return p.stat().st_size


def _safetensors(state: Mapping[str, torch.Tensor], path: Path) -> int:
    from safetensors.torch import save as st_save

    from pvq._io import atomic_write_bytes

    atomic_write_bytes(path, st_save({k: v.detach().contiguous().clone() for k, v in state.items()}))
    return _file_bytes(path)


def _torch_save_bytes(obj: Any, path: Path) -> int:
    import io

    from pvq._io import atomic_write_bytes

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())
    return _file_bytes(path)


class _Half(nn.Module):
    """Runs an FP16 copy of a module on FP32 inputs (float inputs cast to half, outputs back to float)."""

    def __init__(self, m: nn.Module) -> None:
        super().__init__()
        self.m = m

    def forward(self, *args: torch.Tensor, **kw: torch.Tensor) -> torch.Tensor:
        args = tuple(a.half() if a.is_floating_point() else a for a in args)
        kw = {k: (v.half() if v.is_floating_point() else v) for k, v in kw.items()}
        return self.m(*args, **kw).float()


class _Memo(nn.Module):
    """The FP32 reference for :func:`pvq.evaluate.evaluate`, computed once per distinct input: every option
    is evaluated against the same reference outputs, so they are cached (keyed by a BLAKE2b hash of the inputs'
    bytes) instead of recomputed per option. Outputs are exactly the wrapped module's."""

    def __init__(self, m: nn.Module) -> None:
        super().__init__()
        self.m = m
        self._cache: dict[str, torch.Tensor] = {}

    def forward(self, *args: torch.Tensor, **kw: torch.Tensor) -> torch.Tensor:
        import hashlib

        h = hashlib.blake2b(digest_size=16)
        for k, v in [*enumerate(args), *sorted(kw.items())]:
            t = v.detach().cpu().contiguous()
            h.update(f"{k}{tuple(t.shape)}{t.dtype}".encode())
            h.update(t.numpy().tobytes())
        key = h.hexdigest()
        if key not in self._cache:
            self._cache[key] = self.m(*args, **kw)
        return self._cache[key]


class _Builder:
    """Builds the options of one model on one runtime, sharing the FP32 export and the calibration batches."""

    def __init__(
        self, model: nn.Module, name: str, kind: str, cfg: DeployConfig, folder: Path, example: Inputs
    ) -> None:
        self.model = model.eval()
        self.name, self.kind, self.cfg, self.folder, self.example = name, kind, cfg, folder, example
        self.folded, self.fold = fold_batchnorm(model)
        self._fp32_onnx: Path | None = None
        self._calib: list[Any] | None = None

    # -- shared pieces -------------------------------------------------------------------------------------
    def calibration(self) -> list[Any]:
        if self._calib is None:
            from pvq.models import calibration_batches

            self._calib = calibration_batches(
                self.name,
                self.cfg.calib_batches,
                seed=self.cfg.seed,
                batch_size=self.cfg.calib_batch_size,
                disjoint=True,
            )
        return self._calib

    def _export(self, m: nn.Module, stem: str) -> Path:
        return export_onnx(
            m,
            self.example,
            self.folder / f"{stem}.onnx",
            sequence_axis=self.kind != "image",
            output_sequence_axis=self.kind == "lm",
        )

    def fp32_onnx(self) -> Path:
        if self._fp32_onnx is None:
            self._fp32_onnx = self._export(self.folded, "fp32")
        return self._fp32_onnx

    def _ort(self, path: Path, counterpart: nn.Module, tol: str, **kw: Any) -> _Built:
        om = OrtModule(ort_session(path, self.cfg.threads))
        return _Built(
            lambda x: _call(om, x),
            om,
            counterpart,
            tol,
            _file_bytes(path),
            artifact=path,
            **kw,
        )

    def _torch(
        self, m: nn.Module, counterpart: nn.Module, tol: str, nbytes: int, stem: str, **kw: Any
    ) -> _Built:
        """A torch option; the whole module is also pickled (``STEM.module.pt``) for the memory measurement."""
        art: Path | None = self.folder / f"{stem}.module.pt"
        try:
            _torch_save_bytes(m, art)
        except Exception:  # a module that does not pickle: no memory figure, the rest stands
            art = None
        return _Built(lambda x: _call(m, x), m, counterpart, tol, nbytes, artifact=art, **kw)

    # -- options -------------------------------------------------------------------------------------------
    def build(self, opt: DeployOption) -> _Built:
        ort = self.cfg.runtime == "onnxruntime"
        w_dense = prunable_weights(self.folded)
        if opt.kind == "fp32":
            if ort:
                return self._ort(self.fp32_onnx(), self.folded, "fp32", weights=w_dense)
            n = _safetensors(self.folded.state_dict(), self.folder / "fp32.safetensors")
            return self._torch(self.folded, self.folded, "fp32", n, "fp32", weights=w_dense)
        if opt.kind == "fp16":
            if ort:
                return self._ort_fp16(w_dense)
            half = _Half(_half_copy(self.folded))
            n = _safetensors(half.m.state_dict(), self.folder / "fp16.safetensors")
            return self._torch(half, self.folded, "fp16", n, "fp16", weights=w_dense)
        if opt.kind in ("int8-static", "int8-dynamic"):
            mode = opt.kind.split("-")[1]
            if ort:
                feeds = None
                if mode == "static":
                    names = input_names_of(self.example)
                    feeds = [
                        {"x": b.numpy()} if isinstance(b, torch.Tensor) else {k: b[k].numpy() for k in names}
                        for b in self.calibration()
                    ]
                p = quantize_onnx(self.fp32_onnx(), self.folder / f"{opt.kind}.onnx", mode, feeds)
                return self._ort(p, self.folded, "int8", weights=w_dense)
            if mode == "static":
                raise _Skip(
                    "torch: static int8 (FX graph-mode PTQ) is not implemented here; use --runtime onnxruntime"
                )
            from torch.ao.quantization import quantize_dynamic

            q = quantize_dynamic(_copy(self.folded), {nn.Linear}, dtype=torch.qint8)
            n = _torch_save_bytes(q.state_dict(), self.folder / "int8-dynamic.pt")
            return self._torch(
                q,
                self.folded,
                "int8",
                n,
                "int8-dynamic",
                weights=w_dense,
                note="torch.ao.quantization.quantize_dynamic: nn.Linear only (convolutions stay FP32)",
            )
        if opt.kind == "int8-weight":
            if ort:
                raise _Skip("onnxruntime: no int8 weight-only kernels for conv/linear here; see int8-dynamic")
            try:
                from torchao.quantization import Int8WeightOnlyConfig, quantize_
            except ImportError:
                raise _Skip(
                    "torchao is not installed (optional: pip install torchao; not a pvq dependency because "
                    "transformers imports it on every model load once installed)"
                ) from None
            q = _copy(self.folded)
            quantize_(q, Int8WeightOnlyConfig())
            n = _torch_save_bytes(q.state_dict(), self.folder / "int8-weight.pt")
            return self._torch(
                q,
                self.folded,
                "int8",
                n,
                "int8-weight",
                weights=w_dense,
                note="torchao Int8WeightOnlyConfig: nn.Linear only (convolutions stay FP32)",
            )
        if opt.kind == "channels":
            res = structured_prune(self.folded, self.example, opt.keep)
            pruned = res.module
            note = (
                f"torch-pruning: {res.weights_after}/{res.weights_before} conv/linear weights kept "
                f"({100 * res.kept:.1f} %), {res.params_after}/{res.params_before} parameters; no fine-tuning"
            )
            if ort:
                return self._ort(
                    self._export(pruned, opt.name), pruned, "fp32", weights=res.weights_after, note=note
                )
            n = _safetensors(pruned.state_dict(), self.folder / f"{opt.name}.safetensors")
            return self._torch(pruned, pruned, "fp32", n, opt.name, weights=res.weights_after, note=note)
        if opt.kind == "semi24":
            return self._semi24()
        return self._recipe(opt, ort)

    def _ort_fp16(self, w_dense: int) -> _Built:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        from pvq._io import atomic_write_bytes

        m16 = convert_float_to_float16(onnx.load(str(self.fp32_onnx())), keep_io_types=True)
        p = self.folder / "fp16.onnx"
        atomic_write_bytes(p, m16.SerializeToString())
        try:
            return self._ort(p, self.folded, "fp16", weights=w_dense)
        except PvqInputError as exc:
            raise _Skip(f"onnxruntime CPU: FP16 model does not run ({exc})") from None

    def _recipe(self, opt: DeployOption, ort: bool) -> _Built:
        from pvq.apply import apply, needs_calibration, save_compressed
        from pvq.recipes import parse_recipe

        rec = parse_recipe(opt.name)
        calib = self.calibration() if needs_calibration(rec) else None
        res = apply(self.model, rec, calib)
        slug = opt.name.replace(":", "_").replace("+", "__")
        report = save_compressed(res, self.folder / f"{slug}.compressed", force=True)
        ckpt = self.folder / f"{slug}.compressed" / "model.safetensors"
        ckpt_bytes = _file_bytes(ckpt)
        del report
        dense, _ = fold_batchnorm(res.module)
        nz = _nonzero_weights(dense)
        note = "pvq.apply; run with dense kernels (zeros and dequantized values stored as FP32)"
        if ort:
            return self._ort(
                self._export(dense, slug), dense, "fp32", checkpoint_bytes=ckpt_bytes, weights=nz, note=note
            )
        return self._torch(
            dense, dense, "fp32", ckpt_bytes, slug, checkpoint_bytes=ckpt_bytes, weights=nz, note=note
        )

    def _semi24(self) -> _Built:
        if self.cfg.runtime != "torch" or not torch.cuda.is_available():
            raise _Skip(
                "2:4 semi-structured kernels (torch.sparse.to_sparse_semi_structured) need a CUDA GPU "
                "(compute capability >= 8.0) and --runtime torch; none here"
            )
        raise _Skip("2:4 on GPU: this run times CPU runtimes only; GPU timing is not wired into deploy yet")


def _save_inputs(x: Inputs, folder: Path, runtime: str) -> Path:
    """The largest batch, saved for the memory-measuring child process (.npz for onnxruntime, .pt for torch)."""
    import io

    import numpy as np

    from pvq._io import atomic_write_bytes

    buf = io.BytesIO()
    if runtime == "onnxruntime":
        feed = {"x": x} if isinstance(x, torch.Tensor) else dict(x)
        np.savez(buf, **{k: v.numpy() for k, v in feed.items()})
        path = folder / "inputs.npz"
    else:
        torch.save(x, buf)
        path = folder / "inputs.pt"
    atomic_write_bytes(path, buf.getvalue())
    return path


class _Skip(Exception):
    """An option this runtime/machine cannot run: a ``skipped`` row with the reason."""


def _copy(m: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(m).eval()


def _half_copy(m: nn.Module) -> nn.Module:
    return _copy(m).half()


def _check(b: _Built, x: Inputs, kind: str, option: str) -> tuple[float, float, str]:
    """Compare the option's outputs with its PyTorch counterpart's on ``x``; raise if out of tolerance."""
    y = b.run(x).float()
    ref = _call(b.counterpart, x).float()
    if y.shape != ref.shape:
        raise PvqInputError(
            f"{option}: output shape {tuple(y.shape)} differs from PyTorch's {tuple(ref.shape)}"
        )
    if not torch.isfinite(y).all():
        raise PvqInputError(f"{option}: non-finite outputs on the evaluation inputs")
    diff = float((y - ref).abs().max())
    scale = float(ref.abs().max())
    if kind in ("image", "lm"):  # top-1 class / next token, at every position for an LM
        agree = float((y.argmax(-1) == ref.argmax(-1)).float().mean())
    else:
        agree = float(torch.nn.functional.cosine_similarity(y, ref, dim=-1).mean())
    bounds = {"fp32": (1e-4, 1e-3), "fp16": (1e-3, 2e-2)}
    if b.tol in bounds:
        a, r = bounds[b.tol]
        tol = a + r * scale
        if diff > tol:
            raise PvqInputError(
                f"{option}: exported model differs from its PyTorch counterpart (max |diff| {diff:.3g} > {tol:.3g})"
            )
        return diff, agree, f"max|diff| <= {a:g} + {r:g} max|ref| = {tol:.3g}"
    return diff, agree, "int8: finite outputs; agreement reported"


def deploy(
    model: nn.Module,
    name: str,
    options: Sequence[str],
    config: DeployConfig | None = None,
    *,
    kind: str | None = None,
    out_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    on_rows: Callable[[list[DeployRow]], None] | None = None,
) -> DeployResult:
    """Measure ``options`` (names, see :data:`pvq.deploy.OPTIONS`) of ``model`` on ``config.runtime``.

    ``name``: the bundled model's name (evaluation data, calibration batches); ``kind``: ``image``/``encoder``
    (default from ``name``). Artifacts go to ``out_dir`` (kept; each written atomically) or a temporary folder
    removed at the end. Options are parsed before any work, so a bad name fails fast. FP32 is always measured.
    ``on_rows``: called with each option's rows as soon as they are measured (what a resumable caller saves).
    """
    from pvq.evaluate import evaluate, kind_of

    cfg = config or DeployConfig()
    opts = [parse_option(o) for o in options]
    if not any(o.kind == "fp32" for o in opts):
        opts.insert(0, parse_option("fp32"))
    opts.sort(key=lambda o: o.kind != "fp32")
    kind = kind or kind_of(name)
    if kind == "lm":
        model = _Logits(model)
    say = progress or (lambda _m: None)
    big = max(cfg.batches)
    inputs = {b: evaluation_inputs(name, kind, b) for b in cfg.batches}
    check_x = inputs[big]
    example = inputs[min(cfg.batches)] if kind == "image" else evaluation_inputs(name, kind, 2)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    tmp = None
    if out_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="pvq-deploy-"))
        folder = tmp
    else:
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
    rows: list[DeployRow] = []
    fp32_run: Callable[[Inputs], torch.Tensor] | None = None
    metric = _HEADLINE[kind]
    try:
        builder = _Builder(model, name, kind, cfg, folder, example)
        reference = _Memo(model.eval())
        x0 = inputs[min(cfg.batches)]
        y0, yf = _call(model, x0), _call(builder.folded, x0)
        tol0 = 1e-4 + 1e-3 * float(y0.abs().max())
        if float((yf - y0).abs().max()) > tol0:  # folding is exact up to rounding; anything more is a bug
            raise PvqInputError(f"{name}: batch-norm folding changed the outputs by more than {tol0:.3g}")
        mem_inputs = _save_inputs(check_x, folder, cfg.runtime)
        for opt in opts:
            say(f"{name} {cfg.runtime} {opt.name}: building")
            try:
                built = builder.build(opt)
            except _Skip as why:
                rows += [
                    DeployRow(
                        name,
                        opt.name,
                        cfg.runtime,
                        b,
                        None,
                        None,
                        None,
                        metric,
                        None,
                        status="skipped",
                        note=str(why),
                    )
                    for b in cfg.batches
                ]
                if on_rows is not None:
                    on_rows(rows[-len(cfg.batches) :])
                continue
            diff, agree, tol = _check(built, check_x, kind, opt.name)
            ev = evaluate(built.module, reference, name=name, kind=kind, recipe=opt.name)
            erow = next(r for r in ev.rows if r.metric == metric)
            lat, ref_ms = {}, {}
            for b in cfg.batches:
                if fp32_run is None:  # FP32 itself
                    lat[b] = time_call(
                        lambda b=b, run=built.run: run(inputs[b]), warmup=cfg.warmup, repeats=cfg.repeats
                    )
                    ref_ms[b] = lat[b].median_ms
                else:  # interleaved with FP32, call for call
                    r, lat[b] = time_pair(
                        lambda b=b, run=fp32_run: run(inputs[b]),
                        lambda b=b, run=built.run: run(inputs[b]),
                        warmup=cfg.warmup,
                        repeats=cfg.repeats,
                    )
                    ref_ms[b] = r.median_ms
            art = built.artifact
            peak = (
                None
                if art is None or not cfg.measure_memory
                else child_peak_mb(cfg.runtime, art, mem_inputs, cfg.threads)
            )
            if fp32_run is None:
                fp32_run = built.run
            for b in cfg.batches:
                rows.append(
                    DeployRow(
                        name,
                        opt.name,
                        cfg.runtime,
                        b,
                        built.bytes,
                        lat[b].median_ms,
                        lat[b].median_ms / ref_ms[b],
                        metric,
                        erow.value,
                        checkpoint_bytes=built.checkpoint_bytes,
                        peak_mb=peak,
                        fp32_ms=ref_ms[b],
                        q1_ms=lat[b].q1_ms,
                        q3_ms=lat[b].q3_ms,
                        repeats=lat[b].repeats,
                        n=erow.n,
                        ci_low=erow.ci_low,
                        ci_high=erow.ci_high,
                        weights=built.weights,
                        check_max_abs=diff,
                        check_agreement=agree,
                        check_tol=tol,
                        note=built.note,
                    )
                )
            if on_rows is not None:
                on_rows(rows[-len(cfg.batches) :])
            say(
                f"{name} {cfg.runtime} {opt.name}: "
                + ", ".join(f"b{b} {lat[b].median_ms:.2f} ms" for b in cfg.batches)
            )
    finally:
        torch.set_num_threads(threads_before)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return DeployResult(tuple(rows), cfg.threads, cfg.warmup, cfg.repeats)
