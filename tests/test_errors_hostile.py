"""Hostile model files (issue 18: D3, D8, D9, D16): one ``pvq: error:`` line naming the file, exit 2.

Every file here is a few KB and nothing in these tests allocates more than a few MB, even on code that
would trust the file's claims.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from _hostile_files import (
    gguf_alignment,
    gguf_kv,
    gguf_nested_array,
    make_gguf,
    make_hf_folder,
    make_onnx,
    make_pt,
)
from pvq.cli import main
from pvq.errors import PvqInputError
from pvq.models import load_weights

_U32, _I32, _F32, _STR, _ARR = 4, 5, 6, 8, 9

# case -> (writer of the hostile input under a tmp folder, words the one error line must contain)
CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "gguf_alignment_0": (lambda d: make_gguf(d / "a.gguf", gguf_alignment(_U32, 0)), "general.alignment"),
    "gguf_alignment_str": (
        lambda d: make_gguf(d / "a.gguf", gguf_alignment(_STR, "abc")),
        "general.alignment",
    ),
    "gguf_alignment_nan": (
        lambda d: make_gguf(d / "a.gguf", gguf_alignment(_F32, float("nan"))),
        "alignment",
    ),
    # D9: -7 used to be accepted (exit 0, every tensor read from the wrong bytes)
    "gguf_alignment_neg": (lambda d: make_gguf(d / "a.gguf", gguf_alignment(_I32, -7)), "power of two"),
    "gguf_alignment_3": (lambda d: make_gguf(d / "a.gguf", gguf_alignment(_U32, 3)), "power of two"),
    "gguf_nested_5000": (
        lambda d: make_gguf(d / "a.gguf", gguf_kv("x.deep", _ARR, gguf_nested_array(5000))),
        "nested",
    ),
    "gguf_zero_dim": (lambda d: make_gguf(d / "a.gguf", dims=(0, 4)), "zero dimension"),
    "onnx_dims_vs_data": (lambda d: make_onnx(d / "m.onnx", [3, 4], n_values=8), "claims shape [3, 4]"),
    "onnx_dims_2_40": (lambda d: make_onnx(d / "m.onnx", [2**20, 2**20]), "claims shape"),
    "onnx_negative_dim": (lambda d: make_onnx(d / "m.onnx", [-3, 4]), "negative dimension"),
    "onnx_external_missing": (lambda d: make_onnx(d / "m.onnx", [3, 4], external="w.bin"), "'w.bin'"),
    "hf_config_list": (lambda d: make_hf_folder(d / "hf", config=[1, 2]), "expected a JSON object"),
    "hf_architectures_5": (lambda d: make_hf_folder(d / "hf", config={"architectures": 5}), "architectures"),
    "hf_weight_map_list": (
        lambda d: make_hf_folder(d / "hf", index={"weight_map": ["model.safetensors"]}),
        "weight_map",
    ),
    "hf_shard_dotdot": (
        lambda d: make_hf_folder(d / "hf", index={"weight_map": {"w": "../model.safetensors"}}),
        "outside the model folder",
    ),
    "hf_shard_absolute": (
        lambda d: make_hf_folder(d / "hf", index={"weight_map": {"w": str(d / "x.safetensors")}}),
        "outside the model folder",
    ),
    # D3: 4 stored bytes claiming a (1000, 1000) weight (a real attack claims 10^10 elements)
    "pt_stride0": (lambda d: make_pt(d / "w.pt", "stride0"), "claims 1000000 elements"),
    "pt_sparse": (lambda d: make_pt(d / "w.pt", "sparse"), "sparse"),
    "pt_meta": (lambda d: make_pt(d / "w.pt", "meta"), "meta"),
}


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("pvq: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_model_file_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    make, words = CASES[case]
    path = make(tmp_path)
    code, out, err = _run(["tensors", str(path), "--bits", "4", "--json"], capsys)
    line = _one_error_line(err)
    assert code == 2 and out == ""
    assert path.name in line and words in line, line


@pytest.mark.parametrize("case", ["gguf_alignment_neg", "onnx_dims_2_40", "pt_stride0", "hf_shard_dotdot"])
def test_hostile_model_file_refused_by_the_loader(tmp_path: Path, case: str) -> None:
    """The library refuses the same files (PvqInputError), not just the CLI."""
    make, words = CASES[case]
    with pytest.raises(PvqInputError, match=words.replace("[", r"\[").replace("]", r"\]")):
        ws = load_weights(make(tmp_path))
        for name in ws:
            ws[name]


def test_valid_hostile_writer_baselines_load(tmp_path: Path) -> None:
    """The writers' well-formed variants load, so each case above fails for its one defect alone."""
    ok = {
        "gguf": make_gguf(tmp_path / "ok.gguf"),
        "gguf_align_32": make_gguf(tmp_path / "ok32.gguf", gguf_alignment(_U32, 32)),
        "onnx": make_onnx(tmp_path / "ok.onnx", [3, 4]),
        "hf": make_hf_folder(tmp_path / "hf", config={"architectures": ["TinyNet"]}),
        "hf_index": make_hf_folder(
            tmp_path / "hf2", index={"weight_map": {"conv.weight": "model.safetensors"}}
        ),
    }
    for what, path in ok.items():
        ws = load_weights(path)
        assert len(ws) >= 1, what
        for name in ws:
            assert ws[name].numel() == ws.info(name).numel


def test_max_elements_guard(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_onnx(tmp_path / "m.onnx", [3, 4])
    code, _, err = _run(["tensors", str(path), "--bits", "4", "--max-elements", "11", "--json"], capsys)
    line = _one_error_line(err)
    assert code == 2 and "12 elements" in line and "--max-elements 11" in line
    code, out, _ = _run(["tensors", str(path), "--bits", "4", "--max-elements", "12", "--json"], capsys)
    assert code == 0 and out.startswith("[")
    code, _, err = _run(["tensors", str(path), "--max-elements", "-1"], capsys)
    assert code == 2 and "--max-elements" in _one_error_line(err)
    with pytest.raises(PvqInputError, match="max-elements"):
        load_weights(path, max_elements=11)


@pytest.mark.parametrize("kind", ["meta", "stride0_conv1"])
def test_finetune_source_file_checked_like_other_loaders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """``pvq finetune FILE.pt`` reads its SmallResNet with the same dense-tensor checks as ``load_weights``."""
    import torch

    from pvq.models._small_resnet import SmallResNet

    sd = SmallResNet((4, 8, 8)).state_dict()
    if kind == "meta":
        sd["fc.weight"] = torch.empty(sd["fc.weight"].shape, device="meta")
    else:  # the right shape, but one stored float behind it
        sd["conv1.weight"] = torch.ones(1).expand(sd["conv1.weight"].shape)
    path = tmp_path / "net.pt"
    torch.save(sd, path)
    code, _, err = _run(
        ["finetune", str(path), "--method", "quant", "--bits", "4", "--out", str(tmp_path / "o")], capsys
    )
    line = _one_error_line(err)
    assert code == 2 and "net.pt" in line and ("meta" if kind == "meta" else "stride-0") in line, line
