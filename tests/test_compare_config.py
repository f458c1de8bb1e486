"""`pvq compare`'s configuration does what config.json says: ``count_overhead`` changes the accounting end
to end, and ``--layer-time`` has one default (issue 11 §4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from pvq._progress import enable_progress
from pvq.cli import main
from pvq.compare import CompareConfig, run_compare
from pvq.compare._text import verdict_text


def _refuse(token: str) -> None:
    raise ValueError(f"not JSON: {token}")


def tiny(path: Path) -> Path:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.Flatten(), nn.Linear(64, 10))
    with torch.no_grad():  # a heavy-tailed layer, where pruning can compete
        model[2].weight.copy_(torch.distributions.StudentT(2.0).sample(model[2].weight.shape))
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny(tmp_path_factory.mktemp("cfg") / "tiny.pt")


def test_count_overhead_is_honoured(src: Path, tmp_path: Path) -> None:
    runs = {
        oh: run_compare(CompareConfig(source=str(src), bits=(2, 4), out=tmp_path / str(oh), layers=0, count_overhead=oh))
        for oh in (True, False)
    }
    charged = [o for opts in runs[True].options.values() for o in opts]
    free = [o for opts in runs[False].options.values() for o in opts]
    assert any(o.family == "pruning" and o.overhead_bits > 0 for o in charged)
    assert all(o.overhead_bits == 0 for o in free)  # the paper's accounting: mask and metadata for free
    paper = {(n, o.label, o.bits_per_weight) for n, opts in runs[False].options_paper.items() for o in opts}
    mine = {(n, o.label, o.bits_per_weight) for n, opts in runs[False].options.items() for o in opts}
    assert paper <= mine  # every paper option is there at the paper's cost
    assert "mask not counted" in verdict_text(runs[False]).headline
    assert "mask counted" in verdict_text(runs[True]).headline


def test_no_overhead_flag_reaches_config_json(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    try:
        main([str(x) for x in ("compare", src, "--bits", "4", "--layers", "0", "--no-overhead", "--out", out, "--quiet")])
    except SystemExit as exc:
        assert exc.code in (0, None)
    finally:
        enable_progress(False)
    assert json.loads((out / "config.json").read_text())["count_overhead"] is False
    for f in [*out.glob("*.json"), *out.glob("partial/*.json*")]:  # strict JSON everywhere (issue 18 D10)
        for line in f.read_text().splitlines() if f.suffix == ".jsonl" else [f.read_text()]:
            json.loads(line, parse_constant=_refuse)
    assert "mask-free accounting (--no-overhead)" in (out / "index.html").read_text()


def test_layer_time_has_one_default() -> None:
    import typer.main

    from pvq.cli import app

    cmd = typer.main.get_command(app).commands["compare"]
    opt = next(p for p in cmd.params if p.name == "layer_time")
    assert opt.default == CompareConfig().layer_time_s
