"""Hostile data files (issue 18: D8, D15): ``pvq solve`` problem files, image folders and finetune checkpoints.

One ``pvq: error:`` line naming the file, exit 2; nothing big is allocated, whatever a header claims.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.lib import format as npy

from _hostile_files import good_problem, make_npz, make_png_bomb
from pvq.cli import main
from pvq.data import DEFAULT_FASHION_MNIST_ROOT, image_folder, load_image
from pvq.errors import PvqInputError
from pvq.layerwise import load_problem_npz


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


def _lying_member(path: Path, name: str, shape: tuple[int, ...], arrays: dict[str, np.ndarray]) -> Path:
    """An .npz with ``arrays`` plus member ``name`` whose .npy header claims ``shape`` (float64) over 16 bytes."""
    np.savez(path, **arrays)
    with zipfile.ZipFile(path, "a") as zf, zf.open(f"{name}.npy", "w") as f:
        npy.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": shape})
        f.write(b"\x00" * 16)
    return path


_P = good_problem()
NPZ_CASES = {
    "w_strings": (dict(G=_P["G"], w=np.array([["a"] * 6])), "dtype <U1"),
    "w_times_1e300": (dict(G=_P["G"], w=_P["w"] * 1e300), "max |w|"),
    "w_times_1e-320": (dict(G=_P["G"], w=_P["w"] * 1e-320), "max |w|"),
    "G_times_1e300": (dict(G=_P["G"] * 1e300, w=_P["w"]), "max |G|"),
    "G_complex": (dict(G=_P["G"].astype(complex), w=_P["w"]), "complex"),
    "scale_1e-300": (dict(G=_P["G"], w=_P["w"], scale=np.float64(1e-300)), "'scale'"),
    "G_wrong_shape": (dict(G=_P["G"][:5, :5], w=_P["w"]), "G must have shape (6, 6)"),
}


@pytest.mark.parametrize("case", sorted(NPZ_CASES))
@pytest.mark.parametrize("method", ["prune", "quant"])
def test_hostile_problem_file_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, method: str
) -> None:
    arrays, words = NPZ_CASES[case]
    p = make_npz(tmp_path / f"{case}.npz", **arrays)
    code, _, err = _run(["solve", str(p), "--method", method, "--bits", "4", "--solvers", "all"], capsys)
    line = _one_error_line(err)
    assert code == 2 and p.name in line and words in line, line


def test_problem_file_size_is_checked_from_headers(tmp_path: Path) -> None:
    """D15: the decompressed size is known from the .npy headers and capped before anything is inflated."""
    p = make_npz(tmp_path / "p.npz", **good_problem(n=20))
    G, W, _ = load_problem_npz(p)
    need = G.nbytes + W.nbytes
    with pytest.raises(PvqInputError, match="GiB limit"):
        load_problem_npz(p, max_bytes=need - 1)
    assert load_problem_npz(p, max_bytes=need)[0].shape == (20, 20)


def test_problem_file_lying_member_is_never_inflated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A member that claims 8 TB (10^12 float64) over 16 bytes: refused from its header when it is needed,
    never read at all when it is not (it used to be read, and its failure reported as the file's)."""
    big = (10**12,)
    p = _lying_member(tmp_path / "extra.npz", "junk", big, good_problem())
    code, out, err = _run(
        ["solve", str(p), "--method", "prune", "--bits", "4", "--solvers", "magnitude", "--json"], capsys
    )
    assert code == 0, err
    assert len(json.loads(out)) == 2
    p = _lying_member(tmp_path / "x.npz", "X", (10**12 // 6, 6), {"w": good_problem()["w"]})
    code, _, err = _run(["solve", str(p), "--method", "prune", "--bits", "4"], capsys)
    line = _one_error_line(err)
    assert code == 2 and "GiB" in line and "x.npz" in line


def test_png_decompression_bomb_refused(tmp_path: Path) -> None:
    """D8: a 100-byte PNG claiming 10^10 pixels raised Pillow's DecompressionBombError (a traceback)."""
    (tmp_path / "imgs").mkdir()
    bomb = make_png_bomb(tmp_path / "imgs" / "bomb.png")
    with pytest.raises(PvqInputError, match="bomb.png"):
        load_image(bomb)
    with pytest.raises(PvqInputError, match="bomb.png"):
        image_folder(tmp_path / "imgs", size=32)


def test_image_over_the_pixel_cap_refused_before_decoding(tmp_path: Path) -> None:
    """72 MP: over pvq's 64 MP cap, under the 89 MP at which Pillow starts warning (and 179 MP, its error)."""
    p = make_png_bomb(tmp_path / "big.png", side=8_500)
    with pytest.raises(PvqInputError, match="pixel limit"):
        load_image(p)


def test_png_bomb_in_finetune_data_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "imgs").mkdir()
    make_png_bomb(tmp_path / "imgs" / "bomb.png")
    argv = ["finetune", "mobilenet_v2", "--method", "quant", "--bits", "4", "--data", str(tmp_path / "imgs"),
            "--out", str(tmp_path / "o")]  # fmt: skip
    code, _, err = _run(argv, capsys)
    assert code == 2 and "bomb.png" in _one_error_line(err)


# --- finetune --resume over a checkpoint that is not this run's ---

needs_fmnist = pytest.mark.skipif(
    not DEFAULT_FASHION_MNIST_ROOT.is_dir(), reason="Fashion-MNIST not installed"
)


@needs_fmnist
@pytest.mark.parametrize("kind", ["truncated", "other_model", "not_a_checkpoint"])
def test_finetune_resume_bad_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    from pvq.models._small_resnet import SmallResNet

    torch.manual_seed(0)
    src = tmp_path / "net.pt"
    torch.save(SmallResNet((4, 8, 8)).state_dict(), src)
    out = tmp_path / "out"
    ckpt = out / "checkpoint" / "checkpoint.pt"
    ckpt.parent.mkdir(parents=True)
    if kind == "truncated":
        torch.save(
            {
                "model": SmallResNet((4, 8, 8)).state_dict(),
                "opt": {},
                "epoch": 1,
                "step": 1,
                "sparsity": -1.0,
            },
            ckpt,
        )
        ckpt.write_bytes(ckpt.read_bytes()[:500])
    elif kind == "other_model":
        torch.save(
            {
                "model": SmallResNet((4, 8, 16)).state_dict(),
                "opt": {},
                "epoch": 1,
                "step": 1,
                "sparsity": -1.0,
            },
            ckpt,
        )
    else:
        torch.save({"weights": torch.ones(2)}, ckpt)
    argv = ["finetune", str(src), "--method", "quant", "--bits", "4", "--epochs", "1", "--train-size", "64",
            "--val-size", "32", "--test-size", "32", "--batch-size", "32", "--threads", "1", "--resume",
            "--out", str(out)]  # fmt: skip
    code, _, err = _run(argv, capsys)
    line = _one_error_line(err)
    assert code == 2 and "checkpoint.pt" in line and "start afresh" in line, line
