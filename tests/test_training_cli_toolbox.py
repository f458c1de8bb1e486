"""`pvq finetune`'s toolbox flags: one-line errors naming the flag, and one end-to-end run that uses them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from _cli_run import run_pvq
from pvq.data import DEFAULT_FASHION_MNIST_ROOT
from pvq.models._small_resnet import SmallResNet
from pvq.training import load_quantized

needs_fmnist = pytest.mark.skipif(not DEFAULT_FASHION_MNIST_ROOT.is_dir(), reason="Fashion-MNIST not installed")


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--method", "prune", "--criterion", "hessian"], "--criterion: must be one of"),
        (["--method", "quant", "--criterion", "snip"], "--criterion: ranks weights for pruning"),
        (["--method", "prune", "--schedule", "oneshot", "--nm", "4:2"], "--nm:"),
        (["--method", "prune", "--nm", "2:4"], "--schedule oneshot"),
        (["--method", "prune", "--channel-keep", "1.5"], "--channel-keep: must be in (0, 1)"),
        (["--method", "prune", "--schedule", "lottery", "--cycles", "1"], "--cycles: must be >= 1 (>= 2"),
        (["--method", "prune", "--cycles", "4"], "--cycles: only with --schedule iterative or lottery"),
        (["--method", "quant", "--schedule", "lottery"], "--schedule lottery:"),
        (["--method", "quant", "--kd-alpha", "2"], "--kd-alpha: must be in [0, 1]"),
        (["--method", "quant", "--kd-alpha", "0.5", "--kd-temperature", "0"], "--kd-temperature: must be > 0"),
        (["--method", "quant", "--kd-temperature", "2"], "--kd-temperature: only with --kd-alpha"),
        (["--method", "prune", "--per-channel"], "--per-channel: an LSQ option"),
        (["--method", "prune", "--asymmetric"], "--asymmetric: an LSQ option"),
        (["--method", "quant", "--ends-bits", "0"], "--ends-bits: must be in 1..16"),
        (["--method", "prune", "--mixed-precision"], "--mixed-precision: per-layer LSQ widths; needs --method quant"),
        (["--method", "quant", "--mixed-precision", "--ends-bits", "8"], "--mixed-precision: chooses every"),
    ],
)
def test_toolbox_flags_bad_input_exits_2_naming_the_flag(args: list[str], needle: str, tmp_path: Path) -> None:
    res = run_pvq("finetune", *args, "--bits", "4", "--out", str(tmp_path / "o"))
    assert res.returncode == 2, res.stderr
    assert needle in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


@needs_fmnist
def test_toolbox_flags_reach_the_run(tmp_path: Path) -> None:
    pytest.importorskip("torch_pruning")
    torch.manual_seed(0)
    src = tmp_path / "net.pt"
    full = SmallResNet((4, 8, 8))
    torch.save(full.state_dict(), src)
    out = tmp_path / "out"
    res = run_pvq("finetune", str(src), "--method", "quant", "--bits", "4", "--per-channel", "--ends-bits", "8",
                  "--kd-alpha", "0.5", "--channel-keep", "0.5", "--epochs", "1", "--train-size", "128",
                  "--val-size", "64", "--test-size", "64", "--batch-size", "64", "--threads", "1", "--out", str(out),
                  "--json")
    assert res.returncode == 0, res.stderr
    cfg = json.loads((out / "config.json").read_text())["finetune"]
    assert cfg["per_channel"] and cfg["ends_bits"] == 8 and cfg["kd_alpha"] == 0.5 and cfg["channel_keep"] == 0.5
    state = torch.load(out / "model_state.pt", weights_only=True)
    kept = sum(v.numel() for k, v in state.items() if k.endswith("weight.original") and v.ndim >= 2)
    total = sum(m.weight.numel() for m in full.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    assert 0 < kept <= 0.5 * total  # the saved network is the channel-pruned one


@needs_fmnist
def test_mixed_precision_flag_sets_per_layer_widths(tmp_path: Path) -> None:
    torch.manual_seed(0)
    src = tmp_path / "net.pt"
    torch.save(SmallResNet((4, 8, 8)).state_dict(), src)
    out = tmp_path / "out"
    res = run_pvq("finetune", str(src), "--method", "quant", "--bits", "3", "--mixed-precision", "--epochs", "1",
                  "--train-size", "64", "--val-size", "64", "--test-size", "64", "--batch-size", "64", "--threads",
                  "1", "--out", str(out), "--json")
    assert res.returncode == 0, res.stderr
    widths = dict(json.loads((out / "config.json").read_text())["finetune"]["layer_bits"])
    assert "conv1" in widths and "fc" in widths and set(widths.values()) <= {2, 3, 4, 5, 6, 8, 16}
    ex = load_quantized(out / "quantized.safetensors")
    for name, b in widths.items():  # the exported integers use each layer's own grid
        q = ex[name]["int"]
        assert int(q.min()) >= -(2 ** (b - 1)) and int(q.max()) <= 2 ** (b - 1) - 1
