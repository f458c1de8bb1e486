"""Saving a compressed model: compressed-tensors round trip through the package itself, the dequantized state
dict, file size vs the bit accounting, atomic folders, clear errors on bad folders.

The compressed weights are built here by a plain round-to-nearest (absmax scale) and magnitude pruning, not
by pvq's solvers: saving must store whatever codes it is given.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from pvq.apply import CompressedWeight, format_levels, group_columns, load_compressed, save_compressed
from pvq.apply import _save as save_mod
from pvq.errors import PvqInputError
from pvq.recipes import Plan, parse_recipe, recipe_bits, rows_and_inputs

ct = pytest.importorskip("compressed_tensors")


# ------------------------------------------------------------------------------------ test-only compression


def _masks(w: torch.Tensor, recipe) -> torch.Tensor | None:
    """Magnitude mask (rows, cols): top-k per row (unstructured) or top-n of every m inputs (N:M)."""
    p = recipe.prune
    if p is None:
        return None
    rows, cols = w.shape
    if p.structured:
        g = w.abs().reshape(rows, cols // p.m, p.m)
        idx = g.topk(p.n, dim=-1).indices
        return torch.zeros_like(g, dtype=torch.bool).scatter_(-1, idx, True).reshape(rows, cols)
    k = round(cols * p.keep_ratio)
    idx = w.abs().topk(k, dim=1).indices
    return torch.zeros_like(w, dtype=torch.bool).scatter_(1, idx, True)


def _grouped(w: torch.Tensor, group_size: int) -> torch.Tensor:
    """(rows, cols) -> (rows or 1, groups, gs) with zero padding of a partial last group."""
    rows, cols = w.shape
    if group_size == 0:
        return w.reshape(1, 1, -1)
    if group_size == -1:
        return w.reshape(rows, 1, cols)
    groups = group_columns(cols, group_size)
    padded = torch.zeros(rows, groups * group_size)
    padded[:, :cols] = w
    return padded.reshape(rows, groups, group_size)


def rtn(name: str, weight: torch.Tensor, recipe_text: str) -> CompressedWeight:
    """Round to nearest with an absmax scale per group (uint: min/max with a zero point)."""
    recipe = parse_recipe(recipe_text)
    rows, cols = rows_and_inputs(weight.shape)
    w = weight.detach().float().reshape(rows, cols)
    mask = _masks(w, recipe)
    if mask is not None:
        w = w * mask
    q = recipe.quant
    if q is None:
        return CompressedWeight(name, tuple(weight.shape), recipe, mask=mask, values=w.half())
    g = _grouped(w, q.group_size)  # (R, G, gs)

    def expand(per_group: torch.Tensor) -> torch.Tensor:  # (R, G) -> (rows, cols)
        full = per_group.unsqueeze(-1).expand(g.shape).reshape(g.shape[0], -1)[:, :cols]
        return full.expand(rows, cols)

    levels = format_levels(q.format)
    zero = None
    if levels is not None:
        scale = (g.abs().amax(-1) / levels.abs().max()).clamp_min(1e-8)
        codes = torch.bucketize(w / expand(scale), (levels[1:] + levels[:-1]) / 2)  # nearest level
    elif q.asymmetric:
        top = 2**q.bits - 1
        lo, hi = g.amin(-1).clamp(max=0), g.amax(-1).clamp(min=0)
        scale = ((hi - lo) / top).clamp_min(1e-8)
        zero = torch.round(-lo / scale).clamp(0, top)
        codes = torch.round(w / expand(scale) + expand(zero)).clamp(0, top)
        zero = zero.to(torch.int16)
    else:
        qmax = 2 ** (q.bits - 1) - 1
        scale = (g.abs().amax(-1) / qmax).clamp_min(1e-8)
        codes = torch.round(w / expand(scale)).clamp(-qmax - 1, qmax)
    return CompressedWeight(
        name,
        tuple(weight.shape),
        recipe,
        codes=codes.to(torch.int16),
        scale=scale.float(),
        zero_point=zero,
        mask=mask,
    )


@dataclass
class Result:
    """What pvq.apply.apply returns, as far as saving needs it."""

    module: nn.Module
    weights: dict[str, CompressedWeight]
    rows: dict[str, Any] = field(default_factory=dict)
    recipe_or_plan: Any = None
    seconds: float = 0.5


def compress(model: nn.Module, recipes: dict[str, str]) -> Result:
    """Compress the named weights of ``model`` and put their dequantized values in place."""
    weights = {}
    for name, param in model.named_parameters():
        if name in recipes:
            cw = rtn(name, param, recipes[name])
            with torch.no_grad():
                param.copy_(cw.dequantize())
            weights[name] = cw
    plan = Plan({k: parse_recipe(v) for k, v in recipes.items()})
    return Result(model, weights, recipe_or_plan=plan)


class MLP(nn.Module):
    def __init__(self, d_in: int = 256, d_hidden: int = 128, d_out: int = 64) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.norm = nn.LayerNorm(d_hidden)
        self.fc2 = nn.Linear(d_hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.norm(self.fc1(x))))


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 16, 3)  # a (16, 72) matrix
        self.bn = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 8)


def _mlp(seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP()


# ------------------------------------------------------------------------------------ round trip

# recipe -> storage format expected for a (128, 256) weight
CT_RECIPES = {
    "int4:g128:rtn": "pack-quantized",
    "int4:channel:rtn": "pack-quantized",
    "int8:channel:rtn": "pack-quantized",
    "int4:tensor:rtn": "pack-quantized",
    "uint4:g32:rtn": "pack-quantized",
    "uint8:tensor:rtn": "pack-quantized",
    "fp8:channel:rtn": "float-quantized",
    "prune50:magnitude": "sparse-bitmask",
    "2:4:magnitude": "sparse-24-bitmask",
    "prune50:magnitude+int8:channel:rtn": "int-quantized+sparse-bitmask",
    "2:4:magnitude+fp8:g64:rtn": "float-quantized+sparse-24-bitmask",
}
PVQ_RECIPES = [
    "nf4:g64:rtn",
    "fp4:g32:rtn",
    "int3:channel:rtn",
    "prune50:magnitude+int4:g128:rtn",
    "uint6:g32:rtn",
]


def _assert_close_fp16(got: torch.Tensor, ref: torch.Tensor) -> None:
    """compressed-tensors dequantizes in the scale's dtype (FP16): the FP16 scale and the FP16 product each
    round by at most 2**-11 relative, so |got - ref| <= 2**-10 |ref| (+ 6e-8 for FP16 subnormals)."""
    err = (got.float() - ref).abs()
    bound = 2.0**-10 * ref.abs() + 6e-8
    assert bool((err <= bound).all()), f"max excess {float((err - bound).max()):.3g}"


@pytest.mark.parametrize("recipe", list(CT_RECIPES) + PVQ_RECIPES)
def test_round_trip_through_compressed_tensors(tmp_path: Path, recipe: str) -> None:
    model = _mlp()
    result = compress(model, {"fc1.weight": recipe, "fc2.weight": recipe})
    report = save_compressed(result, tmp_path / "out")
    fmt = {t.name: t.format for t in report.tensors}
    expected = CT_RECIPES.get(recipe, "pvq-packed")
    assert fmt == {"fc1.weight": expected, "fc2.weight": expected}
    state, manifest = load_compressed(tmp_path / "out")
    assert manifest["compressed_tensors_complete"] is (expected != "pvq-packed")
    for name, cw in result.weights.items():
        ref = cw.dequantize()
        if cw.recipe.quant is None:  # FP16 values stored as they are
            assert torch.equal(state[name], ref)
        else:
            _assert_close_fp16(state[name], ref)
    # the rest (biases, the norm) comes back as FP16 of the original
    assert torch.equal(state["norm.weight"], model.norm.weight.detach().half().float())


def test_groups_that_do_not_divide_a_row_are_stored_pvq_packed_and_said_so(tmp_path: Path) -> None:
    # SmolLM2-135M's projections have 576 inputs: groups of 128 leave a partial group, which
    # compressed-tensors cannot dequantize (vllm-project/compressed-tensors#353)
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(576, 64), nn.Linear(64, 32))
    result = compress(model, {"0.weight": "int4:g128:rtn", "1.weight": "int4:g32:rtn"})
    report = save_compressed(result, tmp_path / "out")
    assert report.not_compressed_tensors == ("0.weight",)
    state, manifest = load_compressed(tmp_path / "out")
    assert manifest["compressed_tensors_complete"] is False
    assert "do not divide the 576 inputs" in manifest["not_representable_in_compressed_tensors"]["0.weight"]
    assert list(manifest["not_representable_in_compressed_tensors"]) == ["0.weight"]
    for name, cw in result.weights.items():
        _assert_close_fp16(state[name], cw.dequantize())
    groups = json.loads((tmp_path / "out" / "config.json").read_text())["quantization_config"][
        "config_groups"
    ]
    assert [g["targets"] for g in groups.values()] == [["1"]]


def test_compressed_tensors_reads_the_file_with_its_own_loader(tmp_path: Path) -> None:
    """The package's path-based reader (what a checkpoint loader calls) on model.safetensors itself."""
    from compressed_tensors.compressors import ModelCompressor

    result = compress(_mlp(), {"fc1.weight": "int4:g128:rtn", "fc2.weight": "int4:g128:rtn"})
    save_compressed(result, tmp_path / "out")
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    mc = ModelCompressor.from_compression_config(config["quantization_config"])
    assert list(mc.quantization_compressor) == ["pack-quantized"]
    scheme = next(iter(mc.quantization_config.config_groups.values()))
    assert scheme.targets == ["fc1", "fc2"] and scheme.weights.group_size == 128
    got = dict(
        mc.quantization_compressor["pack-quantized"].decompress(
            str(tmp_path / "out" / "model.safetensors"), {"fc1": scheme, "fc2": scheme}
        )
    )
    assert sorted(got) == ["fc1", "fc2"]
    for module in ("fc1", "fc2"):
        _assert_close_fp16(got[module]["weight"], result.weights[f"{module}.weight"].dequantize())


def test_sparse_tensors_read_by_the_package_from_the_file(tmp_path: Path) -> None:
    from compressed_tensors.compressors import ModelCompressor

    result = compress(_mlp(), {"fc1.weight": "prune50:magnitude", "fc2.weight": "prune75:magnitude"})
    save_compressed(result, tmp_path / "out")
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    mc = ModelCompressor.from_compression_config(config["quantization_config"])
    assert mc.quantization_compressor is None and mc.sparsity_config.format == "sparse-bitmask"
    assert mc.sparsity_config.global_sparsity == pytest.approx(
        (0.5 * 128 * 256 + 0.75 * 64 * 128) / (128 * 256 + 64 * 128)
    )
    got = dict(mc.sparsity_compressor.decompress(str(tmp_path / "out" / "model.safetensors")))
    for name, cw in result.weights.items():
        assert torch.equal(got[name].float(), cw.dequantize())
    assert torch.equal(got["fc1.bias"], result.module.fc1.bias.detach().half())


def test_mixed_plan_one_group_per_scheme_and_hf_config_merged(tmp_path: Path) -> None:
    model = _mlp()
    result = compress(model, {"fc1.weight": "int4:g64:gptq", "fc2.weight": "uint4:channel:rtn"})
    hf = {"model_type": "mlp", "hidden_size": 128, "architectures": ["MLP"]}
    save_compressed(result, tmp_path / "out", model_config=hf)
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert {k: config[k] for k in hf} == hf
    qc = config["quantization_config"]
    assert qc["quant_method"] == "compressed-tensors" and qc["format"] == "pack-quantized"
    groups = sorted(qc["config_groups"].values(), key=lambda g: g["targets"])
    assert [g["targets"] for g in groups] == [["fc1"], ["fc2"]]
    assert (groups[0]["weights"]["strategy"], groups[0]["weights"]["group_size"]) == ("group", 64)
    assert (groups[1]["weights"]["strategy"], groups[1]["weights"]["symmetric"]) == ("channel", False)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["recipe_or_plan"]["recipes"]["fc1.weight"] == "int4:g64:gptq"
    assert manifest["seconds"] == 0.5 and manifest["pvq_version"]


def test_dequantized_state_dict_loads_into_the_original_architecture(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    torch.manual_seed(0)
    cnn = SmallCNN()
    cnn.bn.running_mean.uniform_(-1, 1)
    result = compress(cnn, {"conv.weight": "int4:channel:rtn", "fc.weight": "prune50:magnitude"})
    report = save_compressed(result, tmp_path / "out")
    assert {t.name: t.format for t in report.tensors} == {
        "conv.weight": "pack-quantized",
        "fc.weight": "sparse-bitmask",
    }
    for state in (
        load_file(str(tmp_path / "out" / "model.dequantized.safetensors")),
        load_compressed(tmp_path / "out")[0],
    ):
        fresh = SmallCNN()
        missing, unexpected = fresh.load_state_dict(state, strict=True)
        assert missing == [] and unexpected == []
    # exact copy of the module's own state (incl. the int64 BatchNorm counter) in the dequantized file
    deq = load_file(str(tmp_path / "out" / "model.dequantized.safetensors"))
    for k, v in cnn.state_dict().items():
        assert torch.equal(deq[k], v), k
    # the conv kernel (16, 8, 3, 3) comes back in its shape through compressed-tensors
    state, _ = load_compressed(tmp_path / "out")
    _assert_close_fp16(state["conv.weight"], result.weights["conv.weight"].dequantize())
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert "quantization_config" in config and "model_type" not in config


# ------------------------------------------------------------------------------------ size vs accounting

SIZE_RECIPES = [
    "int4:g128:rtn",
    "int4:channel:rtn",
    "int8:channel:rtn",
    "uint4:g32:rtn",
    "fp8:channel:rtn",
    "prune50:magnitude",
    "2:4:magnitude",
    "prune50:magnitude+int8:channel:rtn",
    "nf4:g64:rtn",
    "int3:g128:rtn",
    "prune75:magnitude+int4:g128:rtn",
]


@pytest.mark.parametrize("recipe", SIZE_RECIPES)
def test_file_size_matches_bit_accounting(tmp_path: Path, recipe: str) -> None:
    from safetensors import safe_open

    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(1024, 1024, bias=False))
    result = compress(model, {"0.weight": recipe})
    save_compressed(result, tmp_path / "out")
    path = tmp_path / "out" / "model.safetensors"
    with safe_open(str(path), framework="pt") as f:
        stored = sum(f.get_tensor(k).numel() * f.get_tensor(k).element_size() for k in f.keys())
    expected = recipe_bits(recipe, (1024, 1024)).total * 1024 * 1024 / 8
    # within 0.1 % (the issue asks 2 %): only the few-byte `shape` tensors are not counted
    assert abs(stored - expected) <= 0.001 * expected, (stored, expected)
    # the file is those bytes plus a small header
    assert stored < path.stat().st_size < stored + 4096


def test_pack_quantized_padding_counts_in_the_accounting() -> None:
    # 100 inputs in int4: 13 int32 words per row (104 codes), and zero points packed 8 rows to a word
    bits = recipe_bits("uint4:channel:rtn", (10, 100))
    assert bits.codes == pytest.approx(32 * 13 / 100)
    assert bits.zero_points == pytest.approx(32 * 2 / 1000)


# ------------------------------------------------------------------------------------ folders and errors


def test_existing_out_dir_needs_force_and_is_replaced_whole(tmp_path: Path) -> None:
    result = compress(_mlp(), {"fc1.weight": "int4:g128:rtn"})
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    with pytest.raises(PvqInputError, match="already exists; pass --force"):
        save_compressed(result, out)
    assert (out / "stale.txt").exists()
    save_compressed(result, out, force=True)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["model.safetensors", "model.dequantized.safetensors", "config.json", "manifest.json"]
    )
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folders left


def test_failure_mid_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = compress(_mlp(), {"fc1.weight": "int4:g128:rtn"})
    real = save_mod._write_json
    calls = []

    def failing(path: Path, data: Any) -> None:  # the disk fills up at the manifest
        calls.append(path.name)
        if path.name == "manifest.json":
            raise OSError("No space left on device")
        real(path, data)

    monkeypatch.setattr(save_mod, "_write_json", failing)
    with pytest.raises(OSError, match="No space"):
        save_compressed(result, tmp_path / "new")
    assert calls == ["config.json", "manifest.json"]
    assert list(tmp_path.iterdir()) == []
    # with --force over an existing checkpoint, the old one stays as it was
    monkeypatch.setattr(save_mod, "_write_json", real)
    save_compressed(result, tmp_path / "old")
    before = {p.name: p.read_bytes() for p in (tmp_path / "old").iterdir()}
    monkeypatch.setattr(save_mod, "_write_json", failing)
    other = compress(_mlp(seed=3), {"fc1.weight": "prune50:magnitude"})
    with pytest.raises(OSError):
        save_compressed(other, tmp_path / "old", force=True)
    assert {p.name: p.read_bytes() for p in (tmp_path / "old").iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["old"]


def test_out_dir_inside_the_source_is_refused(tmp_path: Path) -> None:
    result = compress(_mlp(), {"fc1.weight": "int8:channel:rtn"})
    src = tmp_path / "model"
    src.mkdir()
    for out in (src, src / "compressed"):
        with pytest.raises(PvqInputError, match="model source"):
            save_compressed(result, out, source_path=src)
    with pytest.raises(PvqInputError, match="model source"):  # --force on a parent would delete the source
        save_compressed(result, tmp_path, force=True, source_path=src / "model.safetensors")


def test_load_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(PvqInputError, match="no such checkpoint folder"):
        load_compressed(tmp_path / "nope")
    result = compress(_mlp(), {"fc1.weight": "int4:g128:rtn", "fc2.weight": "prune50:magnitude"})
    out = tmp_path / "out"
    save_compressed(result, out)
    good = (out / "model.safetensors").read_bytes()
    (out / "model.safetensors").write_bytes(good[: len(good) // 2])
    with pytest.raises(PvqInputError, match="model.safetensors: not a readable safetensors file"):
        load_compressed(out)
    (out / "model.safetensors").write_bytes(b"\x80\x04pickle")
    with pytest.raises(PvqInputError, match="not a readable safetensors file"):
        load_compressed(out)
    (out / "model.safetensors").unlink()
    with pytest.raises(PvqInputError, match="model.safetensors: missing"):
        load_compressed(out)
    (out / "model.safetensors").write_bytes(good)
    (out / "config.json").write_text("{not json")
    with pytest.raises(PvqInputError, match="config.json: not readable JSON"):
        load_compressed(out)
    (out / "config.json").write_text(
        json.dumps({"quantization_config": {"config_groups": {"g": {"targets": 3}}}})
    )
    with pytest.raises(PvqInputError, match="not a valid compressed-tensors config"):
        load_compressed(out)
    (out / "manifest.json").unlink()
    with pytest.raises(PvqInputError, match="manifest.json: missing"):
        load_compressed(out)


def test_load_names_a_missing_tensor(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    result = compress(_mlp(), {"fc1.weight": "int4:g128:rtn"})
    out = tmp_path / "out"
    save_compressed(result, out)
    tensors = load_file(str(out / "model.safetensors"))
    del tensors["fc1.weight_scale"]
    save_file(tensors, str(out / "model.safetensors"))
    with pytest.raises(PvqInputError, match="fc1.weight_scale"):
        load_compressed(out)


def test_codes_out_of_range_are_refused(tmp_path: Path) -> None:
    result = compress(_mlp(), {"fc1.weight": "int4:channel:rtn"})
    cw = result.weights["fc1.weight"]
    bad = CompressedWeight(cw.name, cw.shape, cw.recipe, codes=cw.codes + 9, scale=cw.scale)
    result.weights["fc1.weight"] = bad
    with pytest.raises(ValueError, match=r"codes must lie in \[-8, 7\]"):
        save_compressed(result, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_packing_equals_the_package_pack_to_int32(bits: int) -> None:
    from compressed_tensors.compressors.quantized_compressors.pack_quantized import pack_to_int32

    from pvq.apply._ct_format import pack_int32

    g = torch.Generator().manual_seed(bits)
    u = torch.randint(0, 2**bits, (9, 37), generator=g)  # 37 columns: a padded last word
    signed = (u - 2 ** (bits - 1)).to(torch.int8)
    assert torch.equal(pack_int32(u, bits), pack_to_int32(signed, bits))
    assert torch.equal(pack_int32(u.T, bits).T, pack_to_int32(signed, bits, packed_dim=0))


@pytest.mark.parametrize(
    ("recipe", "fmt"),
    [
        ("2:4:magnitude", "sparse-24-bitmask"),
        ("prune50:magnitude+int4:g8:rtn", "pvq-packed"),
        ("nf4:g24:rtn", "pvq-packed"),
    ],
)
def test_conv_kernels_round_trip_in_their_shape(tmp_path: Path, recipe: str, fmt: str) -> None:
    torch.manual_seed(4)
    cnn = SmallCNN()
    result = compress(cnn, {"conv.weight": recipe})
    report = save_compressed(result, tmp_path / "out")
    assert report.tensors[0].format == fmt
    state, _ = load_compressed(tmp_path / "out")
    ref = result.weights["conv.weight"].dequantize()
    assert state["conv.weight"].shape == (16, 8, 3, 3)
    if result.weights["conv.weight"].recipe.quant is None:
        assert torch.equal(state["conv.weight"], ref)
    else:
        _assert_close_fp16(state["conv.weight"], ref)
    missing, unexpected = SmallCNN().load_state_dict(state, strict=True)
    assert missing == [] and unexpected == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "recipe", ["int4:g32:rtn", "int8:channel:rtn", "fp8:channel:rtn", "uint8:tensor:rtn"]
)
def test_transformers_loads_the_checkpoint(tmp_path: Path, recipe: str) -> None:
    """transformers 5 loads compressed-tensors checkpoints only with compressed-tensors >= 0.15 (which
    pvq[apply] does not install, see pyproject): run with that package to check the Hugging Face path."""
    from packaging.version import Version

    if Version(ct.__version__) < Version("0.15"):
        pytest.skip(f"transformers needs compressed-tensors >= 0.15 to load, {ct.__version__} installed")
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(
        vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg).eval()
    names = {n: recipe for n, _ in model.named_parameters() if n.endswith("proj.weight")}
    save_compressed(compress(model, names), tmp_path / "out", model_config=cfg.to_dict())
    loaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    x = torch.randint(0, 128, (1, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = model(x).logits, loaded(x).logits
    assert float((a - b).abs().max()) < 2e-3 * float(a.abs().max())


def test_pvq_bit_stream_by_hand() -> None:
    import numpy as np

    from pvq.apply._pvq_format import pack_bits, unpack_bits

    # 2-bit codes 1, 2, 3, least significant bit first: bits 1 0 | 0 1 | 1 1 -> 0b111001 = 57
    assert pack_bits(np.array([1, 2, 3]), 2).tolist() == [57]
    rng = np.random.default_rng(0)
    for bits in range(2, 9):
        v = rng.integers(0, 2**bits, size=1001)
        stream = pack_bits(v, bits)
        assert stream.size == math.ceil(1001 * bits / 8)
        assert np.array_equal(unpack_bits(stream, bits, 1001), v)
