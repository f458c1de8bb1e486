"""Issue 17 (what a new user hits in the first hour): the top-level API, solve_row's default scale, progress on
stderr with and without a terminal, --help, --arch/--data notes, bundled names vs local folders, compare --json."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import pvq
from pvq import _progress
from pvq.errors import PvqInputError

REPO = Path(__file__).resolve().parents[1]


def run_pvq(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(REPO / "src"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pvq", *args], capture_output=True, text=True, timeout=600, cwd=cwd, env=full_env
    )


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.Flatten(), nn.Linear(64, 10))


# ---- library and API -------------------------------------------------------------------------------------------


def test_import_pvq_stays_light_and_offers_the_verbs() -> None:
    code = "import sys, pvq; print('torch' in sys.modules); print(sorted(n for n in pvq.__all__ if n.isalpha() and n.islower()))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    lines = r.stdout.split("\n")
    assert lines[0] == "False", r.stderr  # importing pvq does not import torch
    assert lines[1] == "['apply', 'compare', 'evaluate', 'sweep']"
    for verb in ("apply", "compare", "evaluate", "sweep"):
        assert callable(getattr(pvq, verb))
    from pvq.tensors import sweep

    assert pvq.sweep is sweep
    with pytest.raises(AttributeError):
        pvq.no_such_verb  # noqa: B018


def test_pvq_compare_on_a_module_with_calibration_runs_the_layer_stage() -> None:
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 32, 3), nn.ReLU(), nn.Conv2d(32, 8, 3))
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randn(4, 3, 12, 12, generator=gen) for _ in range(2)]
    messages: list[str] = []
    r = pvq.compare(model, bits=[4], calibration=batches, layers=1, chunks=1, layer_time_s=60, log=messages.append)
    assert [rec["name"] for rec in r.records] == ["0.weight", "2.weight", "4.weight"]
    assert r.layer_rows and {row["layer"] for row in r.layer_rows} == {"2"}  # the middle layer, solved
    assert {row["method"] for row in r.layer_rows} == {"prune", "quant"}
    assert "given by the caller" in r.layers_note
    assert any(m.startswith("stage 2/2: layer-wise") for m in messages)
    assert "not run for an nn.Module" not in r.eval_note  # evaluate=False: the plain skip note


def test_pvq_compare_on_a_module_without_calibration_writes_the_report(tmp_path: Path) -> None:
    r = pvq.compare(tiny_model(), bits="4", layers=1, out=tmp_path / "out")
    assert r.layer_rows == [] and "needs calibration inputs" in r.layers_note
    assert (tmp_path / "out" / "index.html").is_file() and (tmp_path / "out" / "config.json").is_file()
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    assert cfg["source"] == "<Sequential>" and cfg["bits"] == [4]
    with pytest.raises(PvqInputError, match="calibration: batches need an nn.Module"):
        pvq.compare("mobilenet_v2", calibration=[torch.zeros(1, 3, 8, 8)])


def test_pvq_compare_module_resume_key_follows_the_weights(tmp_path: Path) -> None:
    model = tiny_model()
    pvq.compare(model, bits=[4], layers=0, out=tmp_path / "o", report=False)
    with torch.no_grad():
        model[0].weight.mul_(2.0)
    with pytest.raises(PvqInputError, match="tensors.jsonl"):  # other weights: refused, not mixed
        pvq.compare(model, bits=[4], layers=0, out=tmp_path / "o", report=False)


def test_solve_row_defaults_to_the_rows_mse_optimal_scale() -> None:
    from pvq.layerwise import layer_scale, solve_row

    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 8))
    G, w0 = X.T @ X, rng.standard_normal(8)
    got = solve_row(G, w0, "quant", 4, solvers=["rtn", "exact"], time_limit=30)
    ref = solve_row(G, w0, "quant", 4, scale=layer_scale(w0, 4), solvers=["rtn", "exact"], time_limit=30)
    for name in ("rtn", "exact"):
        assert got[name].value == pytest.approx(ref[name].value, rel=1e-12)
        assert any("MSE-optimal 4-bit scale" in n for n in got[name].notes)
        assert not any("MSE-optimal" in n for n in ref[name].notes)
    with pytest.raises(ValueError, match="all zero"):
        solve_row(G, np.zeros(8), "quant", 4)


# ---- progress --------------------------------------------------------------------------------------------------


def test_progress_without_a_terminal_prints_outer_counts_only(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PVQ_PROGRESS_EVERY", "0")
    monkeypatch.setattr(_progress, "_ENABLED", True)
    for _ in _progress.progress(range(3), desc="outer"):
        for _ in _progress.progress(iter(range(5)), desc="inner"):  # nested: silent
            pass
    for _ in _progress.progress([], desc="empty"):  # nothing to do: silent
        pass
    err = capsys.readouterr().err
    assert "inner" not in err and "empty" not in err and "?" not in err
    assert err.splitlines()[0] == "pvq: outer: 0/3"
    assert "pvq: outer: 1/3 (33%)" in err and "left" in err
    assert err.splitlines()[-1].startswith("pvq: outer: 3/3 (100%)")


def test_progress_on_a_terminal_shows_stage_and_eta_without_inner_bars(monkeypatch: pytest.MonkeyPatch) -> None:
    master, slave = pty.openpty()
    tty = os.fdopen(slave, "w")
    monkeypatch.setattr(sys, "stderr", tty)
    monkeypatch.setattr(_progress, "_ENABLED", True)
    for _ in _progress.progress(range(40), desc="tensors"):
        for _ in _progress.progress(range(1), desc="innerbar"):
            pass
    for _ in _progress.progress(iter(range(3)), desc="unknown total"):
        pass
    tty.flush()
    tty.close()
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode("utf-8", "replace"))  # no ANSI codes
    assert "tensors" in text and "ETA" in text and "/40" in text
    assert "innerbar" not in text  # no flashing inner bar
    assert "unknown total" in text and "?" not in text  # no "0/?"


def test_compare_cli_with_stderr_piped_logs_stages_progress_and_resume(tmp_path: Path) -> None:
    torch.save(tiny_model().state_dict(), tmp_path / "tiny.pt")
    args = ("compare", "tiny.pt", "--bits", "4", "--layers", "0", "--no-eval", "--out", "o")
    env = {"PVQ_PROGRESS_EVERY": "0"}
    r = run_pvq(*args, "--json", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)  # --json: only JSON on stdout
    assert [row["row"] for row in rows] == ["summary", "verdict"]
    assert rows[0]["bits"] == 4 and rows[0]["tensors"] == 3 and rows[1]["headline"]
    assert rows[1]["report"].endswith("index.html") and rows[1]["recommendation"]["budget_bits"] == 4
    err = r.stderr
    assert "pvq: stage 1/1: tensors" in err and "pvq: writing the report into o" in err
    assert "pvq: tensors: 0/3" in err and "pvq: tensors: 1/3 (33%)" in err and "pvq: tensors: 3/3 (100%)" in err
    part = tmp_path / "o" / "partial" / "tensors.jsonl"
    part.write_text(part.read_text().splitlines()[0] + "\n")  # as if interrupted after the first tensor
    r2 = run_pvq(*args, cwd=tmp_path, env=env)
    assert r2.returncode == 0, r2.stderr
    assert "pvq: resuming: 1 of 3 tensors already measured" in r2.stderr
    assert "pvq: tensors: 0/2" in r2.stderr and "pvq: tensors: 2/2 (100%)" in r2.stderr
    assert "Verdict:" in r2.stdout


def _write_tiny(tmp_path: Path) -> Path:
    torch.save(tiny_model().state_dict(), tmp_path / "tiny.pt")
    (tmp_path / "tinyarch.py").write_text(textwrap.dedent("""
        from torch import nn

        def build():
            return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.Flatten(), nn.Linear(64, 10))
    """))
    return tmp_path / "tiny.pt"


def test_compare_arch_builds_the_model_of_a_weights_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write_tiny(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    r = pvq.compare(str(path), bits=[4], layers=1, chunks=1, layer_time_s=60, arch="tinyarch:build",
                    out=tmp_path / "o", report=False)
    assert r.layer_rows and {row["layer"] for row in r.layer_rows} == {"2"}  # the middle conv, solved
    assert "crops of scikit-learn's sample photos" in r.layers_note
    assert json.loads((tmp_path / "o" / "partial" / "layers.jsonl").read_text().splitlines()[0])["layer"] == "2"


def test_compare_says_data_was_ignored_for_a_weights_file(tmp_path: Path) -> None:
    from PIL import Image

    path = _write_tiny(tmp_path)
    (tmp_path / "imgs").mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
    messages: list[str] = []
    r = pvq.compare(str(path), bits=[4], layers=1, calibration=tmp_path / "imgs", log=messages.append)
    assert r.layer_rows == [] and "--arch package.module:factory" in r.layers_note  # and how to make it run
    said = [m for m in messages if f"--data {tmp_path / 'imgs'} was ignored" in m]
    assert said and said[0] in r.notes  # on stderr (the CLI's log) and in the report's notes


# ---- bundled names vs local folders ----------------------------------------------------------------------------


def test_bare_bundled_name_wins_over_a_local_folder_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pvq.models import bundled_path, load_weights

    if bundled_path("mobilenet_v2", required=False) is None:
        pytest.skip("bundled MobileNetV2 not installed")
    (tmp_path / "mobilenet_v2").mkdir()  # e.g. an earlier `pvq apply ... --out mobilenet_v2`
    monkeypatch.chdir(tmp_path)
    ws = load_weights("mobilenet_v2")
    assert len(ws) > 50 and any("./mobilenet_v2 was not used" in n for n in ws.notes)
    with pytest.raises(PvqInputError):
        load_weights("./mobilenet_v2")  # the explicit path is the (empty) folder
    from pvq._outdir import source_fingerprint

    assert source_fingerprint("mobilenet_v2").get("bundled") == "mobilenet_v2"
    assert any("write ./mobilenet_v2 to use it" in n for n in ws.notes)  # compare logs the notes on stderr


# ---- --help ----------------------------------------------------------------------------------------------------


def test_help_shows_defaults_and_no_bool_types() -> None:
    from typer.testing import CliRunner

    from pvq.cli import app

    runner = CliRunner()
    commands = ["compare", "theory", "tensors", "layers", "solve", "finetune", "reproduce", "models", "apply",
                "evaluate", "deploy"]
    for cmd in commands:
        out = runner.invoke(app, [cmd, "--help"], env={"COLUMNS": "200"}).output
        assert "Usage:" in out and "<bool>" not in out, cmd
    out = runner.invoke(app, ["compare", "--help"], env={"COLUMNS": "200"}).output
    assert "[default: ./pvq-compare-<model>]" in out and "[default: 2-8]" in out and "--json" in out
    assert "[default: int:channel:rtn" in " ".join(out.split())


def test_compare_layers_error_names_only_its_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from pvq.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["compare", "--layers", "-1"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("pvq: error: --layers:")
    assert "--calib-samples" not in err and "--opt-dim" not in err


def test_compare_builds_a_hugging_face_folder_from_its_config(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM

    from pvq.data import perplexity_text

    folder = tmp_path / "tiny-llama"
    folder.mkdir()
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator([perplexity_text()[:50_000]], trainers.BpeTrainer(vocab_size=256, special_tokens=["[UNK]"]))
    tok.save(str(folder / "tokenizer.json"))
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    r = pvq.compare(str(folder), bits=[4], layers=1, chunks=1, layer_time_s=60)
    assert len(r.records) == 15  # 2 blocks x 7 linear layers + lm_head
    assert r.layer_rows and r.layer_rows[0]["layer"].startswith("model.layers.")
    assert "tokenized with tiny-llama/tokenizer.json" in r.layers_note


# ---- pvq layers --save-problems and the shipped example ----------------------------------------------------------


def test_shipped_example_problem_solves() -> None:
    from pvq.layerwise import load_problem_npz, solve_row

    G, W, scales = load_problem_npz(REPO / "examples" / "features.8.conv.0.0.chunk0.npz")
    assert G.shape == (32, 32) and W.shape == (4, 32) and sorted(scales) == [f"scale_{b}" for b in range(2, 9)]
    res = solve_row(G, W[0], "quant", 4, scale=scales["scale_4"], solvers=["rtn"])
    assert 0 < res["rtn"].value < float(W[0] @ G @ W[0])  # quantizing loses less than the whole signal


def test_layers_save_problems_writes_what_solve_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pvq.cli import main
    from pvq.layerwise import load_problem_npz, result_rows, solve_row
    from pvq.models import bundled_path

    if bundled_path("mobilenet_v2", required=False) is None:
        pytest.skip("bundled MobileNetV2 not installed")
    with pytest.raises(SystemExit) as exc:
        main(["layers", "mobilenet_v2", "--layer", "features.8.conv.0.0", "--bits", "4", "--max-chunks", "1",
              "--max-rows", "2", "--method", "quant", "--solvers", "rtn", "--out", str(tmp_path / "o"),
              "--save-problems", str(tmp_path / "problems"), "--json"])
    assert exc.value.code == 0
    rows = json.loads(capsys.readouterr().out)
    saved = sorted((tmp_path / "problems").iterdir())
    assert [p.name for p in saved] == ["features.8.conv.0.0.chunk0.npz"]
    G, W, scales = load_problem_npz(saved[0])
    assert W.shape == (2, 32) and list(scales) == ["scale_4"]
    mine = result_rows(solve_row(G, W[0], "quant", 4, scale=scales["scale_4"], solvers=["rtn"]), G, W[0], "quant", 4)
    theirs = [r for r in rows if r["solver"] == "rtn"][0]
    assert mine[0]["snr_db"] == pytest.approx(theirs["snr_db"], abs=1e-9)  # the same problem, the same answer


# ---- the README and docs stand alone ------------------------------------------------------------------------------


def test_readme_and_docs_stand_alone() -> None:
    readme = (REPO / "README.md").read_text()
    first_block = readme.split("```")[1].strip().splitlines()
    assert [line.split("#")[0].strip() for line in first_block] == ["make demo", "make test"]
    docs = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "examples" / "README.md"]
    assert {p.name for p in docs} >= {"architecture.md", "api.md", "running.md"}
    for doc in docs:
        text = doc.read_text()
        assert "../shared" not in text and "DESIGN.md" not in text, doc
        for target in re.findall(r"\]\(([^)#]+)\)", text):  # every relative link points at a file that exists
            if not target.startswith("http"):
                assert (doc.parent / target).exists(), (doc, target)


@pytest.mark.slow
def test_api_doc_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every python block of docs/api.md runs as written, in order (relative paths from the repository root)."""
    from pvq.models import bundled_path

    if bundled_path("mobilenet_v2", required=False) is None:
        pytest.skip("bundled MobileNetV2 not installed")
    text = (REPO / "docs" / "api.md").read_text()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").symlink_to(REPO / "examples")
    namespace: dict[str, object] = {}  # one session, as a reader runs them in order
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        exec(compile(block, "docs/api.md", "exec"), namespace)


# ---- report figures: no legend or label over the data -------------------------------------------------------------


def _data_boxes(ax):  # type: ignore[no-untyped-def]
    """Display-space boxes of what an axes draws as data: bars, scatter points, line vertices."""
    from matplotlib.collections import PathCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle
    from matplotlib.transforms import Bbox

    boxes = []
    for p in ax.patches:
        if isinstance(p, Rectangle) and p.get_height() > 0 and p.get_width() > 0:
            boxes.append(p.get_window_extent())
    for c in ax.collections:
        if isinstance(c, PathCollection):
            for x, y in c.get_offset_transform().transform(c.get_offsets()):
                boxes.append(Bbox.from_extents(x - 2, y - 2, x + 2, y + 2))
    for line in ax.lines:
        if isinstance(line, Line2D) and line.get_marker() not in (None, "None", "", " "):
            for x, y in line.get_transform().transform(line.get_xydata()):
                if np.isfinite(x) and np.isfinite(y):
                    boxes.append(Bbox.from_extents(x - 2, y - 2, x + 2, y + 2))
    return boxes


def _labels(fig):  # type: ignore[no-untyped-def]
    """Legends and free text (not titles or tick labels) of every axes and of the figure."""
    out = []
    for ax in fig.axes:
        if ax.get_legend() is not None:
            out.append(("legend", ax.get_legend()))
        out += [("text", t) for t in ax.texts if t.get_text().strip()]
    out += [("legend", leg) for leg in fig.legends]
    return out


def test_compare_figures_keep_legends_and_labels_off_the_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pvq.report import _fig_compare as F

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.Conv2d(16, 16, 3), nn.Conv2d(16, 16, 3), nn.Linear(16, 4))
    with torch.no_grad():  # one heavy-tailed tensor, so that pruning (+ quantization) wins somewhere
        model[1].weight.copy_(torch.distributions.StudentT(1.5).sample(model[1].weight.shape))
    r = pvq.compare(model, bits=range(2, 9), layers=0)
    figs: dict[str, list[str]] = {}  # key -> problems found, checked on the figure just before it is saved
    kmap_labels: set[str] = set()
    real_save = F.save

    def check(fig, out_dir, key, title, caption):  # type: ignore[no-untyped-def]
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        data = [b for ax in fig.axes for b in _data_boxes(ax)]
        problems = [] if data else ["no data drawn"]
        for kind, artist in _labels(fig):
            box = artist.get_window_extent(renderer)
            if any(box.overlaps(b) for b in data):
                problems.append(f"a {kind} covers data")
        for ax in fig.axes:  # whole-number ticks where the axis counts tensors or bits
            if ax.get_xlabel().startswith(("tensor", "bits")):
                lo, hi = ax.get_xlim()
                ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
                if not all(float(t).is_integer() for t in ticks):
                    problems.append(f"fractional x ticks {ticks}")
            for label in ax.get_yticklabels(minor=False) + ax.get_yticklabels(minor=True):
                if "times" in label.get_text():  # mathtext 6\\times10^{0}
                    problems.append(f"tick label {label.get_text()!r}")
        if key == "kurtosis_map":
            kmap_labels.update(c.get_label() for c in fig.axes[0].collections)
        figs[key] = problems
        return real_save(fig, out_dir, key, title, caption)

    monkeypatch.setattr(F, "save", check)
    vrows = [v.to_json() for v in r.verdicts]
    F.fig_verdict_bits(r.summary, tmp_path)
    F.fig_allocation(r.allocation.rows(), tmp_path)
    F.fig_kurtosis_map(r.tensor_rows(), vrows, 4, tmp_path)
    assert figs == {"verdict_by_bits": [], "allocation": [], "kurtosis_map": []}
    winners = {v["winner"] for v in vrows if v["bits"] == 4}
    assert {label.removesuffix(" wins") for label in kmap_labels} == winners  # one colour per winning family


def test_reproduce_index_shows_table1_as_a_table_and_flags_smoke(tmp_path: Path) -> None:
    from pvq.report._fig_training import table1_markdown
    from pvq.report._index import IndexEntry, write_reproduce_index

    rows = [  # the row layout pvq reproduce table1 writes (DESIGN.md finetune keys)
        {"model": "resnet", "method": "none", "bits": 16, "value": 62.7},
        {"model": "resnet", "method": "quant", "bits": 4, "value": 60.1},
        {"model": "resnet", "method": "prune", "bits": 4, "value": 38.2},
    ]
    (tmp_path / "table1").mkdir()
    md = tmp_path / "table1" / "table1.md"
    md.write_text(table1_markdown(rows))
    entries = [IndexEntry("table1", [], [md], 3), IndexEntry("fig1", [], [], 5)]
    page = write_reproduce_index(tmp_path, entries, {"preset": "smoke"}, "test").read_text()
    table1 = page[page.index("<section id='table1'>"):page.index("<section id='fig1'>")]
    assert "<table class='md'>" in table1 and "<td>62.70</td>" in table1 and "<th>4b</th>" in table1
    assert "not meaningful" in table1  # smoke accuracies flagged where they are shown
    assert "not meaningful" not in page[page.index("<section id='fig1'>"):]
    cpu = write_reproduce_index(tmp_path, entries, {"preset": "cpu"}, "test").read_text()
    assert "not meaningful" not in cpu and "<td>62.70</td>" in cpu


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")), reason="chromium not installed")
def test_every_report_section_screenshot_at_two_widths(tmp_path: Path) -> None:
    """test-artifacts/usab_section_<id>_<width>.png: each section of a compare report, wide and narrow."""
    from PIL import Image

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.Conv2d(16, 16, 3), nn.Conv2d(16, 16, 3), nn.Linear(16, 4))
    with torch.no_grad():
        model[1].weight.copy_(torch.distributions.StudentT(1.5).sample(model[1].weight.shape))
    pvq.compare(model, bits=range(2, 9), layers=0, out=tmp_path / "rep")
    page = tmp_path / "rep" / "index.html"
    text = page.read_text()
    ids = re.findall(r"<section id='([a-z0-9-]+)'", text)
    assert {"tensors", "budget", "config"} <= set(ids)
    art = REPO / "test-artifacts"
    art.mkdir(exist_ok=True)
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    head, main_end = text[: text.index("<main>") + len("<main>")], text.index("</main>")
    for sid in ids:
        start = text.index(f"<section id='{sid}'")
        nxt = text.find("<section id=", start + 1)
        alone = tmp_path / "rep" / f"section-{sid}.html"  # the page with only this section (headless chromium
        alone.write_text(head + text[start : nxt if nxt != -1 else main_end] + text[main_end:])  # ignores #fragments)
        for width in (1280, 700):
            shot = art / f"usab_section_{sid}_{width}.png"
            shot.unlink(missing_ok=True)
            subprocess.run(
                [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
                 "--virtual-time-budget=4000", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
                 f"--window-size={width},2200", alone.resolve().as_uri()],
                capture_output=True, timeout=120,
            )  # fmt: skip
            colours = Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 20)
            assert colours is None or len(colours) > 50, (sid, width)  # a rendered page, not a blank one


def test_compare_json_keeps_compiled_code_prints_off_stdout(capfd: pytest.CaptureFixture[str]) -> None:
    """SciPy's HiGHS MILP (the budget allocation) prints a debug line from C++ on some models; with --json it
    must land on stderr, or stdout is no longer JSON (seen on the bundled MobileNetV2 at 2-8 bits)."""
    from pvq.cli._compare import _stdout_to_stderr

    with _stdout_to_stderr():
        os.write(1, b"from C\n")  # what compiled code does: straight to file descriptor 1
        print("from Python")
    print("[]")
    out, err = capfd.readouterr()
    assert out == "[]\n" and "from C" in err and "from Python" in err


def test_compare_arch_is_refused_where_it_would_be_ignored(tmp_path: Path) -> None:
    with pytest.raises(PvqInputError, match="--arch: the source is an nn.Module"):
        pvq.compare(tiny_model(), arch="tinyarch:build", layers=0)
    with pytest.raises(PvqInputError, match="--arch: the source is the bundled model mobilenet_v2"):
        pvq.compare("mobilenet_v2", arch="tinyarch:build", layers=0, out=tmp_path / "o")
