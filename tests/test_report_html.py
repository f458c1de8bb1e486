"""The compare report page: rendered from a real CompareResult built on small random tensors, checked as
text and in a real headless browser (Debian's chromium; skipped when absent)."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from pvq.compare import (
    CompareConfig,
    CompareResult,
    allocate,
    bits_summary,
    layer_verdicts,
    magnitude_prune_snr,
    options_from_rows,
    tensor_verdicts,
    uniform_allocation,
    verdict_text,
)
from pvq.compare._measure import extra_options
from pvq.compare._write import write_outputs

REPO = Path(__file__).resolve().parents[1]
BITS = (2, 4, 8)


def _direct_quant_snr(v: torch.Tensor, bits) -> dict[int, float]:
    """Published-style grid search (100 clipping candidates), a direct reference implementation."""
    v = v.reshape(-1).double()
    out = {}
    for b in bits:
        qmax = 2 ** (b - 1) - 1
        ts = torch.arange(1, 101, dtype=torch.float64) * float(v.abs().max()) / 100
        s = (ts / qmax)[:, None]
        err = ((torch.clamp(torch.round(v[None] / s), -qmax - 1, qmax) * s - v[None]) ** 2).mean(1)
        out[b] = 10 * math.log10(float((v * v).mean()) / float(err.min()))
    return out


def build_result(tmp: Path) -> CompareResult:
    rng = np.random.default_rng(0)
    records = []
    for i, df in enumerate((2.5, 4.0, 30.0, 3.0)):
        shape = (16, 8, 3, 3) if i % 2 else (24, 16)
        w = torch.from_numpy(rng.standard_t(df, size=shape).astype(np.float32))
        q = _direct_quant_snr(w, BITS)
        p = magnitude_prune_snr(w, [b / 16 for b in BITS])
        x = w.double().reshape(-1)
        kurt = float(((x - x.mean()) ** 4).mean() / ((x - x.mean()) ** 2).mean() ** 2)
        rows = [
            {
                "name": f"l{i}.weight",
                "shape": list(shape),
                "bits": b,
                "kurtosis": kurt,
                "quant_snr_db": q[b],
                "quant_sparsity": 0.1,
                "prune_snr_db": float(pp),
                "prune_snr_corrected_db": float(pp),
            }
            for b, pp in zip(BITS, p, strict=True)
        ]
        records.append(
            {
                "name": f"l{i}.weight",
                "kind": "linear",
                "shape": list(shape),
                "numel": w.numel(),
                "rows": rows,
                "extra": extra_options(w, BITS, _direct_quant_snr),
            }
        )
    cfg = CompareConfig(source="tiny", bits=BITS, out=tmp)
    opts = {r["name"]: options_from_rows(r["rows"], r["extra"]) for r in records}
    opts_p = {r["name"]: options_from_rows(r["rows"], [], count_overhead=False) for r in records}
    sizes = {r["name"]: r["numel"] for r in records}
    vs, vp = tensor_verdicts(opts, BITS), tensor_verdicts(opts_p, BITS)
    lrows = [
        {
            "layer": "l1",
            "chunk": c,
            "bits": b,
            "method": m,
            "solver": "exact",
            "kind": "exact",
            "status": "optimal",
            "snr_db": (6 if m == "quant" else 3) * b + c,
        }
        for c in range(3)
        for b in BITS
        for m in ("quant", "prune")
    ]
    curve = [allocate(opts, sizes, b).summary() for b in (3, 4, 6, 8)]
    return CompareResult(
        cfg,
        "tiny",
        ["a note"],
        records,
        opts,
        opts_p,
        vs,
        vp,
        bits_summary(vs),
        bits_summary(vp),
        4.0,
        allocate(opts, sizes, 4.0),
        [a for f in ("quantization", "pruning") if (a := uniform_allocation(opts, sizes, f, 4.0))],
        curve,
        lrows,
        layer_verdicts(lrows),
        "1 layer sampled",
        {"total": 0.1},
    )


def render(tmp: Path) -> Path:
    from pvq.report import write_compare_report

    res = build_result(tmp)
    verdict = verdict_text(res)
    files = write_outputs(res, tmp, verdict, "test")
    return write_compare_report(res, verdict, tmp, "test", files)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("report") / "out")


def test_report_is_self_contained(rendered: Path) -> None:
    page = rendered
    tmp_path = page.parent
    text = page.read_text()
    for section in ("verdict", "by-bits", "budget", "layers", "natural-sparsity", "tensors", "config"):
        assert f"id='{section}'" in text
    imgs = re.findall(r'<img[^>]+src="([^"]+)"', text)
    assert len(imgs) >= 5 and all(s.startswith("data:image/png;base64,") for s in imgs)
    assert not re.search(r'(src|href)="https?://', text)  # nothing fetched from the network
    assert "l0.weight" in text and "pvqSort" in text
    for stem in ("tensors", "verdicts", "allocation", "options", "layers"):
        assert (tmp_path / f"{stem}.json").exists() and (tmp_path / f"{stem}.csv").exists()
    pngs = sorted((tmp_path / "figures").glob("*.png"))
    assert pngs and all((p.with_suffix(".svg")).exists() for p in pngs)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(page: Path, tmp: Path, *args: str, fragment: str = "") -> subprocess.CompletedProcess[str]:
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp / 'chromium-profile'}", "--hide-scrollbars", *args, page.resolve().as_uri() + fragment,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def check_in_browser(page: Path, tmp: Path, shot: Path, min_images: int = 5, sortable: bool = True) -> None:
    dom = chromium(page, tmp, "--virtual-time-budget=5000", "--dump-dom", fragment="#selftest").stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body, "chromium returned no DOM"
    attrs = dict(re.findall(r'data-pvq-([a-z-]+)="([^"]*)"', body.group(1)))
    assert attrs.get("ready") == "1", attrs
    assert int(attrs["images"]) >= min_images
    if sortable:
        assert attrs.get("sort") == "ok", "the per-tensor table did not sort"
    assert attrs["broken"] == "0", "some images did not load"
    assert attrs["errors"] == "0", attrs.get("error-text")
    shot.parent.mkdir(parents=True, exist_ok=True)
    chromium(page, tmp, f"--screenshot={shot}", "--window-size=1280,2000")
    assert shot.exists() and shot.stat().st_size > 10_000


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (scripts/install_system.sh installs it)")
def test_report_in_headless_browser(rendered: Path, tmp_path: Path) -> None:
    check_in_browser(rendered, tmp_path, REPO / "test-artifacts" / "report_synthetic.png")


def test_reproduce_index_links_every_figure(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pvq.report._index import IndexEntry, write_reproduce_index

    (tmp_path / "fig1").mkdir()
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    fig.savefig(tmp_path / "fig1" / "fig1.png")
    plt.close(fig)
    entries = [
        IndexEntry("fig1", ["Gaussian grid differs from the paper's"], [tmp_path / "fig1" / "fig1.png"], 3)
    ]
    path = write_reproduce_index(tmp_path, entries, {"preset": "smoke"}, "test")
    page = path.read_text()
    if CHROMIUM is not None:
        check_in_browser(
            path, tmp_path, REPO / "test-artifacts" / "reproduce_index.png", min_images=1, sortable=False
        )
    assert "src='fig1/fig1.png'" in page and "What differs from the paper" in page and "Gaussian grid" in page
