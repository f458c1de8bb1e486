"""Nothing stale, nothing lost (issue 18 D1, D5, D6, D11, D13, D14; issue 11 §4): resumable files are keyed
on the source's content and every option that changes them, output folders are checked up front, locked,
never the source's, written so that a killed run cannot leave a mixed folder, and Ctrl-C says what it kept."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from pvq.cli import main
from pvq.errors import PvqInputError


def run(*args: object) -> tuple[int, str, str]:
    """The CLI in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    # the error is one line, the last; before it only progress lines (stderr is not a terminal here)
    lines = err.strip().splitlines()
    assert lines[-1].startswith("pvq: error:") and all(ln.startswith("pvq: ") for ln in lines), err
    assert sum(ln.startswith("pvq: error") for ln in lines) == 1
    lines = lines[-1:]
    for n in needles:
        assert n in lines[0], lines[0]


def tiny_pt(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.Flatten(), nn.Linear(64, 10))
    torch.save(model.state_dict(), path)
    return path


def two_tensors(path: Path, seed: int) -> Path:
    g = torch.Generator().manual_seed(seed)
    save_file(
        {"a.weight": torch.randn(16, 16, generator=g), "b.weight": torch.randn(8, 32, generator=g)}, str(path)
    )
    return path


# ---- D1: stale or foreign results ------------------------------------------------------------------------


def test_tensors_out_refuses_results_of_another_source_or_options(tmp_path: Path) -> None:
    a, b = two_tensors(tmp_path / "a.safetensors", 0), two_tensors(tmp_path / "b.safetensors", 1)
    d = tmp_path / "d"
    code, out, err = run("tensors", a, "--bits", "4", "--out", d, "--json")
    assert code == 0, err
    rows_a = json.loads(out)
    code, out, err = run("tensors", b, "--bits", "4", "--out", d, "--json")  # same names, other numbers
    one_line_error(code, err, "source_content", "--out")
    code, out, err = run("tensors", a, "--bits", "8", "--out", d, "--json")
    one_line_error(code, err, "bits")
    code, out, err = run("tensors", a, "--bits", "4", "--out", d, "--json")  # the same run resumes
    assert code == 0, err
    assert json.loads(out) == rows_a


def test_compare_refuses_partial_results_of_a_replaced_file(tmp_path: Path) -> None:
    src, d = tiny_pt(tmp_path / "m.pt", seed=0), tmp_path / "d"
    code, _, err = run("compare", src, "--bits", "4", "--out", d, "--quiet")
    assert code == 0, err
    tiny_pt(src, seed=1)  # new content under the same name
    code, _, err = run("compare", src, "--bits", "4", "--out", d, "--quiet")
    one_line_error(code, err, "partial/tensors.jsonl", "source_content")
    assert "delete" in err


def test_finetune_resume_refuses_a_checkpoint_made_with_other_options(tmp_path: Path) -> None:
    from pvq.training import FinetuneConfig, finetune

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
    data = torch.utils.data.TensorDataset(torch.randn(64, 16), torch.randint(0, 4, (64,)))
    cfg = FinetuneConfig(method="quant", bits=4, epochs=1, batch_size=32, bn_batches=0)
    finetune(model, data, cfg, checkpoint_dir=tmp_path)
    with pytest.raises(PvqInputError, match=r"bits 4 -> 2"):
        finetune(model, data, replace(cfg, bits=2, epochs=2), checkpoint_dir=tmp_path, resume=True)
    res = finetune(model, data, replace(cfg, epochs=1), checkpoint_dir=tmp_path, resume=True)
    assert [r["epoch"] for r in res.history] == [1]  # same options: resumed, nothing left to train


def test_a_second_writer_is_refused(tmp_path: Path) -> None:
    src, d = tiny_pt(tmp_path / "m.pt"), tmp_path / "d"
    d.mkdir()
    holder = subprocess.Popen(  # another pvq run holding the folder's lock
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); "
            "print('held', flush=True); time.sleep(120)",
            str(d / ".pvq.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        code, _, err = run("compare", src, "--bits", "4", "--out", d, "--quiet")
        one_line_error(code, err, "in use by another pvq run")
        code, _, err = run("tensors", src, "--bits", "4", "--out", d)
        one_line_error(code, err, "in use by another pvq run")
        assert sorted(p.name for p in d.iterdir()) == [".pvq.lock"]  # nothing written
    finally:
        holder.kill()
        holder.wait()
    code, _, err = run("tensors", src, "--bits", "4", "--out", d)  # free again
    assert code == 0, err


def test_lock_is_reentrant_within_a_process(tmp_path: Path) -> None:
    from pvq._outdir import open_output

    with open_output(tmp_path / "o") as a, open_output(tmp_path / "o") as b:
        assert a.path == b.path


# ---- issue 11 §4: every cache keyed on everything that changes it ------------------------------------------


def test_compare_layers_key_covers_every_option_that_changes_the_rows() -> None:
    from pvq.compare import CompareConfig

    base = CompareConfig(source="m.pt")
    for change in ({"chunks": 8}, {"layers": 3}, {"solve_time_s": 5.0}, {"calib_samples": 16}, {"seed": 1}):
        assert replace(base, **change).fingerprint()["layers.jsonl"] != base.fingerprint()["layers.jsonl"], (
            change
        )
    for change in ({"layer_time_s": 10.0}, {"budget": "3"}):  # how much is done / what is done with the rows
        assert replace(base, **change).fingerprint() == base.fingerprint(), change


def test_chunks_are_identified_by_content_not_position() -> None:
    from pvq.compare._layers_stage import chunk_id
    from pvq.layerwise import ChunkProblem

    G, W = np.eye(4), np.ones((2, 4))
    p = ChunkProblem("l", 0, G, W, inputs=np.arange(0, 4), row_ids=np.arange(2))
    assert chunk_id(p) == "r0-1:c0-4"
    assert chunk_id(replace(p, inputs=np.arange(4, 8))) != chunk_id(p)  # same position, other columns
    assert chunk_id(replace(p, chunk=3)) == chunk_id(p)  # same content, other position
    assert chunk_id(replace(p, row_ids=np.array([0, 5]))) != chunk_id(replace(p, row_ids=np.array([0, 4])))


def test_layers_task_key_covers_scales_and_seed() -> None:
    from pvq.layerwise import ChunkProblem
    from pvq.layerwise._run import task_key

    p = ChunkProblem("l", 0, np.eye(4), np.ones((2, 4)), scales={4: 0.1}, row_ids=np.arange(2))
    args = ([4], {"quant": ["rtn"]}, 1.0)
    assert task_key(replace(p, scales={4: 0.2}), *args) != task_key(p, *args)
    assert task_key(p, *args, seed=1) != task_key(p, *args, seed=0)
    assert task_key(replace(p, row_ids=np.array([3, 4])), *args) != task_key(p, *args)
    assert task_key(p, *args) == task_key(replace(p, scales={4: 0.1}), *args)


# ---- D5: never write into the source ----------------------------------------------------------------------


def test_compare_out_into_the_models_own_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    src = tiny_pt(folder / "m.pt")
    (folder / "config.json").write_text('{"model_type": "mine"}')
    for out in (folder, tmp_path):  # the source's folder, and a folder that holds it
        code, _, err = run("compare", src, "--bits", "4", "--out", out, "--quiet")
        one_line_error(code, err, "holds the source")
    assert json.loads((folder / "config.json").read_text()) == {"model_type": "mine"}
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "m.pt"]


def test_out_inside_a_folder_source_is_refused(tmp_path: Path) -> None:
    from pvq._outdir import check_not_source

    (tmp_path / "hf").mkdir()
    with pytest.raises(PvqInputError, match="is inside the source folder"):
        check_not_source(tmp_path / "hf" / "report", [tmp_path / "hf"])
    with pytest.raises(PvqInputError, match="is the source folder"):
        check_not_source(tmp_path / "hf", [tmp_path / "hf"])
    check_not_source(tmp_path / "report", [tmp_path / "hf"])  # a sibling is fine


def test_tensors_csv_into_the_source_is_refused(tmp_path: Path) -> None:
    f = two_tensors(tmp_path / "a.safetensors", 0)
    code, _, err = run("tensors", f, "--csv", f)
    one_line_error(code, err, "--csv", "source")
    from safetensors.torch import load_file

    assert set(load_file(str(f))) == {"a.weight", "b.weight"}  # still the model


# ---- D6: outputs checked before the work; a late failure loses nothing ------------------------------------


def test_tensors_unwritable_csv_is_refused_before_the_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pvq.tensors

    def no_sweep(*a: object, **k: object) -> None:
        raise AssertionError("the sweep ran before the output was checked")

    monkeypatch.setattr(pvq.tensors, "sweep", no_sweep)
    f = two_tensors(tmp_path / "a.safetensors", 0)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, out, err = run("tensors", f, "--csv", blocker / "r.csv")
    one_line_error(code, err, "--csv", "r.csv")
    code, out, err = run("tensors", f, "--out", blocker)
    one_line_error(code, err, "--out", "not a folder")


def test_solve_out_existing_file_is_refused_before_solving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pvq.layerwise

    def no_solve(*a: object, **k: object) -> None:
        raise AssertionError("solved before the output was checked")

    monkeypatch.setattr(pvq.layerwise, "solve_row", no_solve)
    prob = tmp_path / "p.npz"
    np.savez(prob, G=np.eye(4), w=np.array([1.0, -0.5, 0.25, 2.0]))
    existing = tmp_path / "rows"
    existing.write_text("keep me")
    code, out, err = run("solve", prob, "--method", "prune", "--bits", "4", "--out", existing)
    one_line_error(code, err, "--out", "not a folder")
    assert existing.read_text() == "keep me"


def test_tensors_write_failure_at_the_end_prints_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pvq.cli._tensors as cli_tensors

    def disk_full(path: object, text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(cli_tensors, "atomic_write_text", disk_full)
    f = two_tensors(tmp_path / "a.safetensors", 0)
    code, out, err = run("tensors", f, "--bits", "4", "--csv", tmp_path / "r.csv")
    one_line_error(code, err, "No space left", "stdout")
    lines = out.splitlines()
    assert lines[0].startswith("name,shape,") and len(lines) == 3  # header + 2 tensors at 1 bit-width


# ---- D11: a killed rewrite never leaves a folder that mixes two runs ---------------------------------------


def test_killed_report_rewrite_leaves_no_committed_mixed_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pvq.report._compare_report as report

    src, d = tiny_pt(tmp_path / "m.pt"), tmp_path / "d"
    code, _, err = run("compare", src, "--bits", "4", "--budget", "3", "--out", d, "--quiet")
    assert code == 0, err
    assert json.loads((d / "config.json").read_text())["budget"] == "3"

    def killed(*a: object, **k: object) -> str:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(report, "render_compare_html", killed)  # killed while writing the page
        code, _, err = run("compare", src, "--bits", "4", "--budget", "4", "--out", d, "--quiet")
    assert code == 130
    assert not (d / "config.json").exists()  # no commit marker: the folder does not claim either run
    code, _, err = run("compare", src, "--bits", "4", "--budget", "4", "--out", d, "--quiet")
    assert code == 0, err
    assert json.loads((d / "config.json").read_text())["budget"] == "4"
    assert "budget 4 bits/weight" in (d / "index.html").read_text()


def test_figures_are_written_atomically(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    from pvq.report._save import save_png_svg

    save_png_svg(plt.figure(), tmp_path, "f")
    before = (tmp_path / "f.png").read_bytes()
    fig = plt.figure()

    def torn(target: object, **kw: object) -> None:
        if isinstance(target, (str, Path)):
            Path(target).write_bytes(b"half a figure")
        else:
            target.write(b"half a figure")  # type: ignore[attr-defined]
        raise KeyboardInterrupt

    fig.savefig = torn  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        save_png_svg(fig, tmp_path, "f")
    assert (tmp_path / "f.png").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png", "f.svg"]  # no temp file left


# ---- D13: Ctrl-C says what it kept ------------------------------------------------------------------------


def test_ctrl_c_exits_130_and_says_partial_results_were_kept(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    f = tmp_path / "many.safetensors"
    save_file({f"t{i}.weight": torch.randn(128, 128, generator=g) for i in range(300)}, str(f))
    d = tmp_path / "d"
    # compile (and cache) the scale search's numba kernels first: on a cold cache the interrupt would land inside
    # numba's first compile, which is not what this test is about (see the closing note of issue 18)
    small = tmp_path / "small.safetensors"
    save_file({"w.weight": torch.randn(64, 64, generator=g)}, str(small))
    subprocess.run([sys.executable, "-m", "pvq", "tensors", str(small), "--json"], capture_output=True, timeout=600)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pvq", "tensors", str(f), "--out", str(d)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    part = d / "tensors.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if part.exists() and part.read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "pvq: interrupted; partial results were kept" in err
    assert "Traceback" not in err
    kept = part.read_text().count("\n")
    assert 1 <= kept < 300


# ---- D14: one behaviour for empty tensors ------------------------------------------------------------------


def test_empty_tensor_is_skipped_with_a_note_by_tensors_and_compare(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    f = tmp_path / "m.safetensors"
    save_file({"empty.weight": torch.zeros(0, 8), "fc.weight": torch.randn(8, 8, generator=g)}, str(f))
    code, out, err = run("tensors", f, "--bits", "4")
    assert code == 0, err
    assert "note: skipped 1 empty tensor(s)" in err and "empty.weight" in err
    code, out, err = run("tensors", f, "--bits", "4", "--json")
    assert code == 0, err
    assert [r["name"] for r in json.loads(out)] == ["fc.weight"]
    d = tmp_path / "d"
    code, out, err = run("compare", f, "--bits", "4", "--out", d, "--quiet")
    assert code == 0, err
    notes = json.loads((d / "summary.json").read_text())["notes"]
    assert any("skipped 1 tensor(s)" in n and "empty.weight" in n for n in notes)


def test_reproduce_refuses_kept_runs_of_another_preset_or_seed(tmp_path: Path) -> None:
    """table1/fig5/fig8 reuse finished runs by (method, bits, lr): runs of another preset or seed were reused."""
    d = tmp_path / "d"
    (d / "table1").mkdir(parents=True)
    (d / "table1" / "runs.jsonl").write_text(
        '{"key": "quant_4b_lr0.01", "epochs": 1}\n'
    )  # no record of what made it
    code, _, err = run("reproduce", "table1", "--out", d, "--seed", "1")
    one_line_error(code, err, "table1 has no record of the inputs it was made from")
    assert (d / "table1" / "runs.jsonl").read_text() == '{"key": "quant_4b_lr0.01", "epochs": 1}\n'
    (d / "table1" / "config.json").write_text('{"preset": "cpu", "seed": 0}')  # an earlier pvq's record
    code, _, err = run("reproduce", "table1", "--out", d, "--preset", "smoke")
    one_line_error(code, err, "table1 was made from other inputs (differs in: preset)")

    from pvq._outdir import open_output

    with open_output(d) as folder:  # an earlier pvq's record that matches is adopted
        assert folder.claim("table1", {"preset": "cpu", "seed": 0}, recorded={"preset": "cpu", "seed": 0})
        assert json.loads((d / "table1.key.json").read_text()) == {"preset": "cpu", "seed": 0}
    with open_output(d) as folder:  # a folder claimed for seed 0 resumes for seed 0 only
        folder.claim("fig5", {"preset": "smoke", "seed": 0})
        (d / "fig5").mkdir()
        assert folder.claim("fig5", {"preset": "smoke", "seed": 0}) is True
        with pytest.raises(PvqInputError, match="differs in: seed"):
            folder.claim("fig5", {"preset": "smoke", "seed": 1})


@pytest.mark.skipif(
    not __import__("pvq.data", fromlist=["x"]).DEFAULT_FASHION_MNIST_ROOT.is_dir(),
    reason="Fashion-MNIST not installed",
)
def test_finetune_cli_resume_refuses_other_bits_or_a_replaced_source(tmp_path: Path) -> None:
    from pvq.models._small_resnet import SmallResNet

    src, d = tmp_path / "net.pt", tmp_path / "d"
    torch.manual_seed(0)
    torch.save(SmallResNet((4, 8, 8)).state_dict(), src)
    small = (
        "--epochs",
        "1",
        "--train-size",
        "64",
        "--val-size",
        "32",
        "--test-size",
        "32",
        "--batch-size",
        "32",
    )
    code, _, err = run(
        "finetune", src, "--method", "quant", "--bits", "4", *small, "--threads", "1", "--out", d
    )
    assert code == 0, err
    code, _, err = run("finetune", src, "--method", "quant", "--bits", "2", *small, "--out", d, "--resume")
    one_line_error(code, err, "checkpoint.pt", "finetune")
    torch.manual_seed(1)
    torch.save(SmallResNet((4, 8, 8)).state_dict(), src)  # another network under the same name
    code, _, err = run("finetune", src, "--method", "quant", "--bits", "4", *small, "--out", d, "--resume")
    one_line_error(code, err, "source_content")


def test_layers_out_that_is_a_file_is_refused_before_the_capture(tmp_path: Path) -> None:
    existing = tmp_path / "rows"
    existing.write_text("keep me")
    code, _, err = run("layers", "mobilenet_v2", "--layer", "features.8.conv.0.0", "--out", existing)
    one_line_error(code, err, "--out", "not a folder")
    assert existing.read_text() == "keep me"


def test_compare_layers_0_does_not_claim_the_layer_rows(tmp_path: Path) -> None:
    from pvq._outdir import open_output
    from pvq.compare import CompareConfig
    from pvq.compare._run import _prepare_out

    cfg = CompareConfig(source="m.pt", out=tmp_path)
    with open_output(tmp_path) as folder:
        part = _prepare_out(cfg, folder)
        (part / "layers.jsonl").write_text("{}\n")
        _prepare_out(replace(cfg, layers=0), folder)  # a quick re-run without the layer stage is fine
        with pytest.raises(PvqInputError, match="differs in: layers"):
            _prepare_out(replace(cfg, layers=1), folder)


@pytest.mark.slow
@pytest.mark.skipif(
    not __import__("pvq.data", fromlist=["x"]).DEFAULT_FASHION_MNIST_ROOT.is_dir(),
    reason="Fashion-MNIST not installed",
)
def test_finetune_write_failure_at_the_end_prints_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pvq.cli._finetune as cli_finetune
    from pvq.models._small_resnet import SmallResNet

    def disk_full(path: object, obj: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    src, d = tmp_path / "net.pt", tmp_path / "d"
    torch.manual_seed(0)
    torch.save(SmallResNet((4, 8, 8)).state_dict(), src)
    monkeypatch.setattr(cli_finetune, "_save_torch", disk_full)  # the model files at the end
    small = (
        "--epochs",
        "1",
        "--train-size",
        "64",
        "--val-size",
        "32",
        "--test-size",
        "32",
        "--batch-size",
        "32",
    )
    code, out, err = run("finetune", src, "--method", "quant", "--bits", "4", *small, "--out", d)
    one_line_error(code, err, "No space left", "stdout")
    assert [r["method"] for r in json.loads(out)] == ["none", "quant"]
    assert (d / "checkpoint" / "checkpoint.pt").exists()


def test_ctrl_c_inside_compiled_code_is_still_an_interrupt(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """numba (and C extensions) hand a Ctrl-C back as SystemError caused by the KeyboardInterrupt (seen in CI:
    the signal landed while numba unpickled a cached kernel); main must still exit 130 with its one line."""
    import pvq.cli as cli

    def wrapped(**kw: object) -> int:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise SystemError("CPUDispatcher(...) returned a result with an exception set") from exc

    monkeypatch.setattr(cli, "app", wrapped)
    with pytest.raises(SystemExit) as ex:
        cli.main(["tensors"])
    assert ex.value.code == 130
    assert "pvq: interrupted; partial results were kept" in capsys.readouterr().err

    def crash(**kw: object) -> int:
        raise SystemError("a real crash")

    monkeypatch.setattr(cli, "app", crash)
    with pytest.raises(SystemError):  # a crash that is not an interrupt is not disguised as one
        cli.main(["tensors"])


def test_ctrl_c_swallowed_by_a_finaliser_still_stops_the_loop_and_exits_130(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """CI saw ``pvq tensors`` exit 0 after SIGINT: the KeyboardInterrupt landed in a finaliser, where Python prints
    "Exception ignored" and drops it. The CLI's handler records it; the next progress step raises it again."""
    import gc

    import pvq.cli as cli
    from pvq import _interrupt
    from pvq._progress import progress

    class Finalised:
        def __del__(self) -> None:
            _interrupt._handler(signal.SIGINT, None)  # what SIGINT does, landing inside __del__

    done: list[int] = []

    def job(**kw: object) -> int:
        obj = Finalised()
        del obj
        gc.collect()
        for i in progress(range(5), desc="items"):  # the interrupt is raised again here, before item 0
            done.append(i)
        return 0

    monkeypatch.setattr(cli, "app", job)
    with pytest.raises(SystemExit) as ex:
        cli.main(["tensors"])
    assert ex.value.code == 130 and done == []
    err = capsys.readouterr().err
    assert "pvq: interrupted; partial results were kept" in err
    assert "Exception ignored" not in err and "Traceback" not in err

    def finishes(**kw: object) -> int:  # swallowed, and no loop left to notice: the exit code still says so
        obj = Finalised()
        del obj
        return 0

    monkeypatch.setattr(cli, "app", finishes)
    with pytest.raises(SystemExit) as ex:
        cli.main(["tensors"])
    assert ex.value.code == 130
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored after main
    _interrupt.check()  # and nothing leaks into later work in this process (CI: a later test's loop was interrupted)
    assert list(progress(range(3))) == [0, 1, 2]
