"""load_weights: every source format gives the same names, kinds and values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from _model_files import TinyNet, write_gguf, write_onnx
from pvq.models import load_weights


@pytest.fixture
def net() -> TinyNet:
    return TinyNet()


def _expect(ws, net: TinyNet) -> None:  # noqa: ANN001
    assert list(ws) == ["conv.weight", "fc.weight"]
    assert ws.info("conv.weight").kind == "conv" and ws.info("fc.weight").kind == "linear"
    assert torch.equal(ws["conv.weight"], net.conv.weight.detach())
    assert torch.equal(ws["fc.weight"], net.fc.weight.detach())


def test_module_and_mapping(net: TinyNet) -> None:
    _expect(load_weights(net), net)
    _expect(load_weights(net.state_dict()), net)


def test_kinds_filter(net: TinyNet) -> None:
    ws = load_weights(net, kinds=("embedding",))
    assert list(ws) == ["emb.weight"] and ws.info("emb.weight").kind == "embedding"
    for src in (net.state_dict(), net):
        ws = load_weights(src, kinds=("conv", "linear", "embedding", "other"))
        assert "bn.weight" in ws and ws.info("bn.weight").kind == "other"
        assert "fc.bias" in ws and ws.info("fc.weight").kind == "linear"


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin"])
def test_torch_file(tmp_path: Path, net: TinyNet, suffix: str) -> None:
    path = tmp_path / f"m{suffix}"
    torch.save(net.state_dict(), path)
    _expect(load_weights(path), net)
    torch.save({"epoch": 3, "state_dict": net.state_dict()}, path)  # a training checkpoint
    _expect(load_weights(str(path)), net)


def test_safetensors_lazy(tmp_path: Path, net: TinyNet) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "m.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    ws = load_weights(path)
    _expect(ws, net)
    assert ws.info("conv.weight").shape == (4, 3, 3, 3)


def test_hf_folder(tmp_path: Path, net: TinyNet) -> None:
    from safetensors.torch import save_file

    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["TinyNet"], "model_type": "tiny"}))
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "model.safetensors"))
    ws = load_weights(tmp_path)
    _expect(ws, net)
    assert any("TinyNet" in n for n in ws.notes)
    (tmp_path / "model.safetensors").unlink()
    torch.save(net.state_dict(), tmp_path / "pytorch_model.bin")
    _expect(load_weights(tmp_path), net)


def test_onnx_initializers(tmp_path: Path, net: TinyNet) -> None:
    path = tmp_path / "m.onnx"
    w_conv, w_fc = net.conv.weight.detach().numpy(), net.fc.weight.detach().numpy()
    write_onnx(path, w_conv, w_fc)
    ws = load_weights(path)
    assert ws.info("conv_w").kind == "conv" and ws.info("fc_w").kind == "linear"
    assert ws.info("fc_w").shape == (5, 4)  # MatMul (in, out) returned as (out, in)
    np.testing.assert_array_equal(ws["fc_w"].numpy(), w_fc)
    np.testing.assert_array_equal(ws["conv_w"].numpy(), w_conv)


def test_gguf_dequantized_and_flagged(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    w32, w4 = rng.standard_normal((8, 64)), rng.standard_normal((16, 64))
    emb = rng.standard_normal((10, 32))
    path = tmp_path / "m.gguf"
    write_gguf(path, {"token_embd.weight": (emb, "Q8_0"), "blk.0.attn_q.weight": (w4, "Q4_1"),
                      "blk.0.ffn_up.weight": (w32, "F32"), "blk.0.attn_norm.weight": (np.ones(64), "F32")})  # fmt: skip
    ws = load_weights(path)
    assert list(ws) == ["blk.0.attn_q.weight", "blk.0.ffn_up.weight"]
    np.testing.assert_allclose(ws["blk.0.ffn_up.weight"].numpy(), w32, rtol=1e-6)
    q = ws["blk.0.attn_q.weight"].numpy()
    assert q.shape == (16, 64)
    # Q4_1: per block of 32, 16 levels between min and max -> error at most half a step
    step = (w4.reshape(-1, 32).max(1) - w4.reshape(-1, 32).min(1)) / 15
    assert np.all(np.abs(q - w4).reshape(-1, 32) <= step[:, None] * 0.5 + 1e-2)
    assert len(np.unique(q.reshape(-1, 32)[0])) <= 16
    assert "already 4-bit" in ws.info("blk.0.attn_q.weight").note
    assert any("Q4_1" in n and "already 4-bit" in n for n in ws.notes)
    ws = load_weights(path, kinds=("embedding",))
    assert ws.info("token_embd.weight").shape == (10, 32)


@pytest.mark.parametrize("qtype", ["Q4_0", "Q4_1", "Q8_0", "F16"])
def test_gguf_kernels_match_gguf_package(tmp_path: Path, qtype: str) -> None:
    """pvq's dequantization kernels give exactly what the gguf package gives."""
    import gguf

    w = np.random.default_rng(1).standard_normal((8, 96)).astype(np.float32)
    path = tmp_path / "k.gguf"
    write_gguf(path, {"blk.0.ffn_up.weight": (w, qtype)})
    got = load_weights(path)["blk.0.ffn_up.weight"].numpy()
    t = gguf.GGMLQuantizationType[qtype]
    ref = gguf.quants.dequantize(gguf.quants.quantize(w, t), t).reshape(w.shape)
    np.testing.assert_array_equal(got, ref)
