"""pvq.deploy on tiny models: BN folding, ONNX export (tolerances per format), ORT int8 static/dynamic,
structural pruning, bad input (op and layer named, nothing half-written), and the deploy rows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("onnxruntime")
pytest.importorskip("torch_pruning")

from pvq.deploy import (  # noqa: E402
    DeployConfig,
    OrtModule,
    child_peak_mb,
    deploy,
    export_onnx,
    fold_batchnorm,
    ort_session,
    prunable_weights,
    quantize_onnx,
    structured_prune,
    time_call,
    time_pair,
)
from pvq.errors import PvqInputError  # noqa: E402


class Block(nn.Module):
    """Conv-BN-ReLU with a residual add: channels are coupled across the add (the dependency graph matters)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, 2 * c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(2 * c)
        self.proj = nn.Conv2d(2 * c, c, 1)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.proj(torch.relu(self.bn(self.conv(x)))))


def tiny_net(seed: int = 0, classes: int = 10) -> nn.Module:
    """(B, 3, H, W) -> (B, classes); BN statistics randomised so folding is not trivially the identity."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        Block(16),
        Block(16),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, classes),
    )
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return net.eval()


def _run(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


def test_fold_batchnorm_is_exact_and_removes_every_bn() -> None:
    net = tiny_net()
    x = torch.randn(4, 3, 32, 32)
    folded, report = fold_batchnorm(net)
    assert len(report.pairs) == 5 and report.unfolded == ()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())  # the original is untouched
    ref = _run(net, x)
    assert (_run(folded, x) - ref).abs().max() <= 1e-5 * max(1.0, float(ref.abs().max()))


def test_fold_without_fx_uses_sequential_siblings() -> None:
    class Untraceable(nn.Module):  # data-dependent control flow: torch.fx cannot trace it
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x) if float(x.sum()) > -1e9 else x

    torch.manual_seed(1)
    net = Untraceable().eval()
    net.body[1].running_mean.uniform_(-1, 1)
    x = torch.randn(2, 3, 8, 8)
    folded, report = fold_batchnorm(net)
    assert report.pairs == (("body.0", "body.1"),)
    assert (_run(folded, x) - _run(net, x)).abs().max() < 1e-5


def test_fp32_onnx_reproduces_pytorch_with_a_dynamic_batch(tmp_path: Path) -> None:
    net, _ = fold_batchnorm(tiny_net())
    path = export_onnx(net, torch.randn(1, 3, 32, 32), tmp_path / "m.onnx")
    ort = OrtModule(ort_session(path, threads=1))
    x = torch.randn(5, 3, 32, 32)  # exported at batch 1, run at batch 5
    ref = _run(net, x)
    # FP32 tolerance used by deploy: 1e-4 + 1e-3 max|ref|
    assert (ort(x) - ref).abs().max() <= 1e-4 + 1e-3 * float(ref.abs().max())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temporary left behind


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_int8_static_and_dynamic_run_and_stay_close(tmp_path: Path, mode: str) -> None:
    import onnx

    net, _ = fold_batchnorm(tiny_net())
    fp32 = export_onnx(net, torch.randn(1, 3, 32, 32), tmp_path / "fp32.onnx")
    torch.manual_seed(3)
    calib = [{"x": torch.randn(8, 3, 32, 32).numpy()} for _ in range(4)]
    q = quantize_onnx(fp32, tmp_path / f"{mode}.onnx", mode, calib if mode == "static" else None)
    ops = {n.op_type for n in onnx.load(str(q)).graph.node}
    assert ("QuantizeLinear" in ops) if mode == "static" else ("ConvInteger" in ops and "Conv" not in ops)
    x = torch.randn(16, 3, 32, 32)
    y, ref = OrtModule(ort_session(q, 1))(x), _run(net, x)
    assert torch.isfinite(y).all()
    rel = float((y - ref).norm() / ref.norm())
    assert rel < 0.1, rel  # int8 on a small net: a few % relative error, far from a broken graph (~1)


def test_int8_weights_make_the_file_smaller(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)).eval()
    fp32 = export_onnx(net, torch.randn(1, 256), tmp_path / "fp32.onnx")
    q = quantize_onnx(fp32, tmp_path / "dyn.onnx", "dynamic")
    assert q.stat().st_size < 0.4 * fp32.stat().st_size


def test_op_ort_cannot_quantize_names_op_and_layer_and_writes_nothing(tmp_path: Path) -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ConvTranspose2d(4, 4, 3)).eval()
    fp32 = export_onnx(net, torch.randn(1, 3, 8, 8), tmp_path / "fp32.onnx")
    with pytest.raises(PvqInputError, match=r"cannot quantize op ConvTranspose in layer 1\b"):
        quantize_onnx(fp32, tmp_path / "dyn.onnx", "dynamic")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fp32.onnx"]


def test_unexportable_op_names_op_and_layer_and_writes_nothing(tmp_path: Path) -> None:
    class Odd(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.linalg.eigh(x @ x.T)[0]

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)
            self.odd = Odd()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.odd(self.lin(x))

    with pytest.raises(PvqInputError, match=r"operator aten::linalg_eigh in layer odd "):
        export_onnx(Net().eval(), torch.randn(4, 4), tmp_path / "bad.onnx")
    assert list(tmp_path.iterdir()) == []


def test_structured_pruning_is_smaller_valid_and_loads_in_a_fresh_process(tmp_path: Path) -> None:
    net, _ = fold_batchnorm(tiny_net())
    x = torch.randn(2, 3, 32, 32)
    res = structured_prune(net, x[:1], keep=0.5)
    pruned = res.module
    assert res.weights_after <= 0.5 * res.weights_before and res.weights_after > 0.3 * res.weights_before
    assert prunable_weights(pruned) == res.weights_after
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in net.parameters())
    assert pruned[-1].out_features == 10  # the classes are kept
    y = _run(pruned, x)
    assert y.shape == (2, 10)
    # a genuinely smaller network on disk: ONNX and the pickled module
    big = export_onnx(net, x[:1], tmp_path / "dense.onnx")
    small = export_onnx(pruned, x[:1], tmp_path / "pruned.onnx")
    assert small.stat().st_size < 0.6 * big.stat().st_size
    torch.save(pruned, tmp_path / "pruned.pt")
    torch.save(x, tmp_path / "x.pt")
    code = (
        "import sys, torch; sys.path.insert(0, sys.argv[3]);"
        "m = torch.load(sys.argv[1], weights_only=False); x = torch.load(sys.argv[2]);"
        "print(m(x).detach().numpy().tolist())"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(tmp_path / "pruned.pt"),
            str(tmp_path / "x.pt"),
            str(Path(__file__).parent),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert np.allclose(np.array(eval(out.stdout.strip().splitlines()[-1])), y.numpy(), atol=1e-5)
    # and the ONNX file runs in a fresh process without torch (the memory child)
    np.savez(tmp_path / "x.npz", x=x.numpy())
    assert child_peak_mb("onnxruntime", small, tmp_path / "x.npz", 1) is not None


def test_time_pair_interleaves_abba() -> None:
    order: list[str] = []
    ref, opt = time_pair(lambda: order.append("r"), lambda: order.append("o"), warmup=1, repeats=4)
    assert "".join(order) == "ro" + "ro" + "or" + "ro" + "or"
    assert ref.repeats == opt.repeats == 4


def test_time_call_takes_the_median() -> None:
    calls = []
    lat = time_call(lambda: calls.append(1), warmup=3, repeats=5)
    assert len(calls) == 8 and lat.repeats == 5 and lat.q1_ms <= lat.median_ms <= lat.q3_ms


def test_deploy_rows_on_a_tiny_image_model() -> None:
    # a tiny classifier evaluated on MobileNetV2's held-out photos and calibrated on its calibration crops
    net = tiny_net(classes=10)
    opts = ["fp16", "int8-static", "prune50:magnitude", "channels50", "2:4-gpu"]
    res = deploy(
        net, "mobilenet_v2", opts, DeployConfig(batches=(1, 4), repeats=1, warmup=0, calib_batches=1)
    )
    by = {(r.recipe, r.batch): r for r in res.rows}
    assert [r.recipe for r in res.rows[:2]] == ["fp32", "fp32"]  # FP32 first, added when not asked
    assert by[("fp32", 4)].latency_ratio == 1.0 and by[("fp32", 1)].value == 1.0
    for o in opts[:-1]:
        for b in (1, 4):
            r = by[(o, b)]
            assert r.status == "ok" and r.latency_ms > 0 and r.metric == "agreement" and r.n == 70
            assert r.latency_ratio == pytest.approx(r.latency_ms / r.fp32_ms)  # FP32 timed next to it
    assert by[("int8-static", 1)].bytes < by[("fp32", 1)].bytes
    assert by[("fp16", 1)].bytes < 0.6 * by[("fp32", 1)].bytes
    assert by[("channels50", 1)].bytes < 0.7 * by[("fp32", 1)].bytes
    assert by[("prune50:magnitude", 1)].checkpoint_bytes is not None
    assert by[("prune50:magnitude", 1)].weights <= 0.55 * by[("fp32", 1)].weights
    assert by[("fp32", 1)].check_max_abs <= 1e-3 and by[("prune50:magnitude", 1)].check_max_abs <= 1e-3
    assert by[("2:4-gpu", 1)].status == "skipped" and "GPU" in by[("2:4-gpu", 1)].note
    assert by[("fp32", 1)].peak_mb is not None and by[("fp32", 1)].peak_mb > 0
    keys = ["model", "recipe", "runtime", "batch", "bytes", "latency_ms", "latency_ratio", "metric", "value"]
    assert list(res.rows[0].to_json())[: len(keys)] == keys


def test_deploy_on_torch_runtime() -> None:
    net = tiny_net(classes=10)
    opts = ["int8-dynamic", "int8-weight", "int8-static"]
    cfg = DeployConfig(runtime="torch", batches=(2,), repeats=1, warmup=0, measure_memory=False)
    res = deploy(net, "mobilenet_v2", opts, cfg)
    by = {r.recipe: r for r in res.rows}
    assert by["int8-dynamic"].status == "ok" and "torch.ao" in by["int8-dynamic"].note
    assert by["int8-static"].status == "skipped"
    assert by["int8-weight"].status in ("ok", "skipped")  # skipped only where torchao is not installed
    assert by["fp32"].peak_mb is None  # measure_memory=False


def test_bad_options_fail_before_any_work() -> None:
    with pytest.raises(PvqInputError, match="--recipe bogus"):
        deploy(tiny_net(), "mobilenet_v2", ["bogus"])
    with pytest.raises(PvqInputError, match="--runtime"):
        DeployConfig(runtime="tensorrt")
    with pytest.raises(PvqInputError, match="--batch"):
        DeployConfig(batches=(0,))


def test_causal_lm_exports_without_kv_cache_and_int8_dynamic_runs() -> None:
    # a tiny Llama (pvq's own decoder, = transformers' LlamaForCausalLM: test_models_bundled) with SmolLM2's vocabulary,
    # fed 64-token windows of SmolLM2's held-out text
    from pvq.models import bundled_path
    from pvq.models._llama import LlamaLM
    from pvq.models._llama_gguf import LlamaGGUFConfig

    if bundled_path("smollm2", required=False) is None:
        pytest.skip("the bundled SmolLM2 (its tokenizer) is not installed")
    cfg = LlamaGGUFConfig(vocab_size=49152, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                          rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
                          bos_token_id=1, eos_token_id=2)  # fmt: skip
    torch.manual_seed(0)
    lm = LlamaLM(cfg).eval()
    res = deploy(
        lm,
        "smollm2",
        ["int8-dynamic"],
        DeployConfig(batches=(1, 2), repeats=1, warmup=0, measure_memory=False),
        kind="lm",
    )
    by = {(r.recipe, r.batch): r for r in res.rows}
    fp32, q = by[("fp32", 2)], by[("int8-dynamic", 2)]
    assert fp32.status == q.status == "ok" and fp32.metric == "perplexity" and fp32.n > 500
    # FP32 ONNX: logits (B, T, vocab) at every position within the FP32 bound, next tokens all agree
    assert fp32.check_max_abs <= 1e-4 + 1e-3 * 10 and fp32.check_agreement == 1.0
    # the token embedding (a Gather) stays FP32 under dynamic int8; the LM head and every block are int8
    assert q.bytes < 0.7 * fp32.bytes and 0.0 <= q.check_agreement <= 1.0
    assert q.latency_ratio == pytest.approx(q.latency_ms / q.fp32_ms)


@pytest.mark.parametrize(("name", "kind"), [("minilm", "encoder"), ("smollm2", "lm")])
def test_text_evaluation_inputs(name: str, kind: str) -> None:
    from pvq.deploy import LM_TOKENS, evaluation_inputs
    from pvq.models import bundled_path

    if bundled_path(name, required=False) is None:
        pytest.skip(f"the bundled {name} is not installed")
    x = evaluation_inputs(name, kind, 3)
    assert isinstance(x, dict) and x["input_ids"].shape[0] == 3 and x["input_ids"].dtype == torch.long
    if kind == "lm":  # consecutive windows of held-out tokens, all different
        assert list(x) == ["input_ids"] and x["input_ids"].shape == (3, LM_TOKENS)
        assert len({tuple(r.tolist()) for r in x["input_ids"]}) == 3
    else:
        assert set(x) >= {"input_ids", "attention_mask"}
