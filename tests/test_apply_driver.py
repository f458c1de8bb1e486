"""pvq.apply: sequential calibration from compressed earlier layers, targets, plans, embeddings, user modules."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import pvq
import pvq.apply._algorithms as algorithms
import pvq.apply._sequential as sequential
from pvq.apply import label_recipe, plan_from_allocation
from pvq.errors import PvqInputError
from pvq.recipes import Plan, parse_recipe


def _record_h(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[torch.Tensor | None]]:
    """Spy on the real compress_matrix/compress_stack: the H each weight (block) was compressed with."""
    seen: dict[str, list[torch.Tensor | None]] = {}
    real, real_stack = algorithms.compress_matrix, algorithms.compress_stack

    def spy(name, weight, recipe, H, *, shape=None):  # type: ignore[no-untyped-def]
        seen.setdefault(name, []).append(None if H is None else H.clone())
        return real(name, weight, recipe, H, shape=shape)

    def spy_stack(items, recipe, H=None):  # type: ignore[no-untyped-def]
        for name, _w, _s in items[1:]:  # the first is recorded by compress_matrix
            seen.setdefault(name, []).append(None if H is None else H.clone())
        return real_stack(items, recipe, H)

    monkeypatch.setattr(algorithms, "compress_matrix", spy)
    monkeypatch.setattr(algorithms, "compress_stack", spy_stack)
    return seen


def _gram(x: torch.Tensor) -> torch.Tensor:
    x = x.reshape(-1, x.shape[-1]).double()
    return x.T @ x


def test_layer2_h_comes_from_compressed_layer1(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    batches = [torch.randn(32, 8) for _ in range(3)]
    seen = _record_h(monkeypatch)
    res = pvq.apply(model, "prune50:wanda", batches)
    c1 = res.module[0]
    with torch.no_grad():
        h_seq = sum(_gram(torch.relu(c1(x))) for x in batches)
        h_orig = sum(_gram(torch.relu(model[0](x))) for x in batches)
    h2 = seen["2.weight"][0]
    assert h2 is not None
    torch.testing.assert_close(h2.double(), h_seq, rtol=1e-4, atol=1e-4)
    assert float((h2.double() - h_orig).norm() / h_orig.norm()) > 1e-2  # layer 1 compressed changed it
    assert (res.module[0].weight == 0).float().mean() == 0.5  # the copy is pruned...
    assert (model[0].weight != 0).all()  # ...the original untouched


class _Block(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.q, self.k, self.o = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x: torch.Tensor, *, scale: float = 1.0) -> torch.Tensor:
        return x + self.o(torch.tanh(self.q(x)) * torch.sigmoid(self.k(x))) * scale


class _Stack(nn.Module):
    def __init__(self, d: int = 12, n: int = 3) -> None:
        super().__init__()
        self.inp = nn.Linear(6, d)
        self.layers = nn.ModuleList(_Block(d) for _ in range(n))
        self.head = nn.Linear(d, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for layer in self.layers:
            h = layer(h, scale=0.5)
        return self.head(h)


def test_block_stack_path_equals_whole_model_forwards(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(1)
    model = _Stack()
    batches = [torch.randn(4, 5, 6) for _ in range(2)]
    seen = _record_h(monkeypatch)
    notes: list[str] = []
    fast = pvq.apply(model, "prune50:wanda", batches, progress=notes.append)
    assert any("block stack of 3" in n for n in notes)
    h_fast = {k: v[0] for k, v in seen.items()}
    # q and k read the same input: one capture, the same H
    torch.testing.assert_close(h_fast["layers.1.q.weight"], h_fast["layers.1.k.weight"])
    seen.clear()
    monkeypatch.setattr(sequential, "_stack_candidates", lambda *_a: [])
    notes.clear()
    slow = pvq.apply(model, "prune50:wanda", batches, progress=notes.append)
    assert any("whole-model forwards" in n for n in notes)
    for name, h in h_fast.items():
        torch.testing.assert_close(h, seen[name][0], rtol=1e-5, atol=1e-5)
    for name in fast.weights:
        torch.testing.assert_close(fast.module.get_parameter(name), slow.module.get_parameter(name))


class _InplaceBlock(_Block):
    """Mutates a linear's output in place: a memoised output must not be reused after that."""

    def forward(self, x: torch.Tensor, *, scale: float = 1.0) -> torch.Tensor:
        a = self.q(x)
        a.mul_(0.5)
        return x + self.o(torch.tanh(a) * torch.sigmoid(self.k(x))) * scale


@pytest.mark.parametrize("block", [_Block, _InplaceBlock])
def test_memoised_outputs_change_nothing(monkeypatch: pytest.MonkeyPatch, block: type) -> None:
    torch.manual_seed(2)
    model = _Stack()
    model.layers = nn.ModuleList(block(12) for _ in range(3))
    batches = [torch.randn(4, 5, 6) for _ in range(3)]
    computed = {"n": 0}
    real_forward = nn.Linear.forward

    def counting(self: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        computed["n"] += 1  # a matrix product really computed
        return real_forward(self, x)

    monkeypatch.setattr(nn.Linear, "forward", counting)
    fast = pvq.apply(model, "int4:g4:gptq", batches)
    fast_products, computed["n"] = computed["n"], 0
    monkeypatch.setattr(sequential, "MEMO_BYTES", 0)
    slow = pvq.apply(model, "int4:g4:gptq", batches)
    for name in fast.weights:  # bit for bit: a memoised output is the tensor the layer computed before
        assert torch.equal(fast.module.get_parameter(name), slow.module.get_parameter(name)), name
    assert fast_products < computed["n"]  # the memo did save products
    assert not any("forward" in vars(m) for m in fast.module.modules())  # overrides removed


def test_calibration_free_recipe_runs_no_forward() -> None:
    class Boom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise AssertionError("forward must not run for rtn")

    res = pvq.apply(Boom(), "int8:channel:rtn", [torch.randn(2, 4)])
    assert res.calibration_batches == 0 and list(res.weights) == ["lin.weight"]


def test_plan_with_unknown_tensors_lists_them() -> None:
    model = nn.Sequential(nn.Linear(4, 4))
    plan = Plan({"0.weight": parse_recipe("int8:channel:rtn"), "9.weight": parse_recipe("int4:g32:rtn")})
    with pytest.raises(PvqInputError, match=r"9\.weight"):
        pvq.apply(model, plan)


def test_plan_applies_per_tensor_and_keeps_the_rest() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8))
    res = pvq.apply(model, Plan({"1.weight": parse_recipe("prune50:magnitude")}))
    status = {r.name: (r.status, r.recipe) for r in res.rows}
    assert status == {"0.weight": ("kept", "none"), "1.weight": ("compressed", "prune50:magnitude")}
    assert torch.equal(res.module[0].weight, model[0].weight)


def test_calibration_recipe_without_data_is_an_input_error() -> None:
    with pytest.raises(PvqInputError, match="calibration"):
        pvq.apply(nn.Sequential(nn.Linear(4, 4)), "prune50:wanda")


class _TinyLM(nn.Module):
    def __init__(self, tie: bool) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.mid = nn.Linear(8, 8)
        self.lm_head = nn.Linear(8, 20, bias=False)
        if tie:
            self.lm_head.weight = self.embed.weight

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.lm_head(torch.relu(self.mid(self.embed(input_ids))))


def test_embeddings_and_lm_head_skipped_unless_opted_in() -> None:
    torch.manual_seed(0)
    model = _TinyLM(tie=False)
    res = pvq.apply(model, "int4:channel:rtn")
    by = {r.name: r for r in res.rows}
    assert list(res.weights) == ["mid.weight"]
    assert by["embed.weight"].status == "skipped" and "include_embeddings" in by["embed.weight"].note
    assert by["lm_head.weight"].status == "skipped" and "include_lm_head" in by["lm_head.weight"].note
    res = pvq.apply(model, "int4:channel:rtn", include_embeddings=True)
    assert set(res.weights) == {"embed.weight", "mid.weight"}
    ids = [{"input_ids": torch.randint(0, 20, (2, 5))}]
    res = pvq.apply(model, "prune50:wanda", ids, include_embeddings=True, include_lm_head=True)
    by = {r.name: r for r in res.rows}
    assert "magnitude" in by["embed.weight"].recipe and "no calibration inputs" in by["embed.weight"].note
    assert (
        by["lm_head.weight"].recipe == "prune50:wanda" and by["lm_head.weight"].rel_output_error is not None
    )


def test_tied_lm_head_is_one_tensor_and_says_so() -> None:
    torch.manual_seed(0)
    model = _TinyLM(tie=True)
    res = pvq.apply(model, "int4:channel:rtn")
    (skipped,) = [r for r in res.rows if r.status == "skipped"]
    assert "tied" in skipped.note
    res = pvq.apply(model, "int4:channel:rtn", include_lm_head=True)
    (row,) = [r for r in res.rows if r.name == "lm_head.weight"]
    assert "tied" in row.note
    assert res.module.embed.weight is res.module.lm_head.weight
    assert not torch.equal(res.module.embed.weight, model.embed.weight)


def test_user_module_with_grouped_conv_and_linear() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8),  # depthwise: rows of 9 inputs
        nn.ReLU(),
        nn.Conv2d(8, 8, 1, groups=2),
        nn.Flatten(),
        nn.Linear(8 * 6 * 6, 5),
    ).eval()
    batches = [torch.randn(4, 3, 6, 6) for _ in range(2)]
    res = pvq.apply(model, "prune50:wanda+int8:channel:rtn", batches)
    assert len(res.weights) == 4
    for r in res.rows:
        assert r.status == "compressed" and r.rel_output_error is not None and 0 < r.rel_output_error < 1
    rtn = pvq.apply(model, "int8:channel:rtn")
    with torch.no_grad():
        ref, out = model(batches[0]), rtn.module(batches[0])
    assert float((out - ref).norm() / ref.norm()) < 1e-2
    assert rtn.bits_per_weight > 8.0  # the FP16 scales are counted


def test_allocation_labels_map_to_recipes() -> None:
    cases = {
        "INT4": "int4:tensor:rtn",
        "prune 75%": "prune75:magnitude",
        "prune 81.2%": "prune81:magnitude",
        "2:4": "2:4:magnitude",
        "2:4 + INT6": "2:4:magnitude+int6:tensor:rtn",
        "prune 50% + INT4": "prune50:magnitude+int4:tensor:rtn",
        "FP16": "none",
    }
    for label, recipe in cases.items():
        assert str(label_recipe(label)) == recipe
    plan = plan_from_allocation(
        [{"name": "a.weight", "label": "INT8"}, {"name": "b.weight", "label": "FP16"}]
    )
    assert str(plan.recipe_for("a.weight")) == "int8:tensor:rtn"
    with pytest.raises(PvqInputError, match="label"):
        label_recipe("INT4 per-block")


def test_import_pvq_stays_light_and_apply_is_callable() -> None:
    import subprocess
    import sys

    code = "import sys, pvq; print('torch' in sys.modules); print(callable(pvq.apply))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.split() == ["False", "True"]


def test_plan_can_name_any_weight_and_read_plan_reads_both_forms(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from pvq.apply import read_plan

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8))
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"recipes": {"1.weight": "int8:tensor:rtn"}, "default": "none"}))
    res = pvq.apply(model, read_plan(path))
    assert list(res.weights) == ["1.weight"] and res.rows[-1].status == "compressed"
    path.write_text(json.dumps([{"name": "0.weight", "label": "INT8"}]))
    assert list(pvq.apply(model, read_plan(path)).weights) == ["0.weight"]
