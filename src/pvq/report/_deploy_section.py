"""The "deployment" section of the compare report: quality vs latency and quality vs bytes on disk, one point per
deployed option, the Pareto front marked, and the measured prune-or-quantize answers (:mod:`pvq.compare._deploy_stage`).

Kept apart from the rest of the report: :func:`fig_deploy` draws the figure, :func:`deploy_section_html` builds the
section's HTML (the page embeds it as it is)."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pvq.report._fig_compare import FAMILY_COLORS, Figure, save  # noqa: E402

__all__ = ["deploy_section_html", "fig_deploy"]

_COLORS = {**FAMILY_COLORS, "reference": "#000000", "pruning+quantization": FAMILY_COLORS["quant+prune"]}
_MARKERS = {"onnxruntime": "o", "torch": "s"}


def _ok(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(float(x))


def fig_deploy(stage: Any, out_dir: Path) -> Figure | None:
    """Two panels at the largest batch: quality vs latency ratio to FP32 (ONNX Runtime options) and quality vs
    bytes on disk (every runtime); each option a point, the Pareto front a step line. ``stage``: a DeployStage."""
    from pvq.compare._deploy_verdict import pareto_front, points_from_rows

    b = max(stage.batches)
    pts = points_from_rows(stage.rows, b)
    if not pts:
        return None
    ort = [p for p in pts if p.option.startswith("onnxruntime/")]
    with plt.rc_context(
        {
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
        }
    ):
        fig, axes = plt.subplots(1, 2, figsize=(9.6, 4.0), sharey=True)
        for ax, axis, these in ((axes[0], "latency", ort), (axes[1], "bytes", pts)):
            cost = (lambda p: p.latency_ratio) if axis == "latency" else (lambda p: p.bytes / 1e6)
            for i, p in enumerate(sorted(these, key=cost)):
                rt, name = p.option.split("/", 1)
                ax.errorbar(
                    [cost(p)], [p.value], yerr=[[p.value - p.low], [p.high - p.value]], fmt=_MARKERS.get(rt, "o"),
                    color=_COLORS.get(p.family, "gray"), ms=6, capsize=2, mec="k", mew=0.5,
                )  # fmt: skip
                ax.annotate(
                    name if rt == "onnxruntime" else f"{name} ({rt})", (cost(p), p.value), fontsize=7,
                    xytext=(4, 3 - 10 * (i % 2)), textcoords="offset points",  # alternate: neighbours overlap
                )  # fmt: skip
            front = pareto_front(these, axis)
            if front:
                xs, ys = [cost(p) for p in front], [p.value for p in front]
                ax.step(xs, ys, where="post", color="k", lw=1, ls="--", alpha=0.6, label="Pareto front")
                ax.legend(fontsize=7, loc="lower right")
            if axis == "latency":
                ax.set_xscale("log")  # ratios: 0.5x and 2x equally far from FP32
            ax.set_xlabel(
                f"latency / FP32 latency (ONNX Runtime, batch {b})"
                if axis == "latency"
                else "bytes on disk (MB)"
            )
        axes[0].set_ylabel(f"{stage.metric} vs FP32 PyTorch (higher is better)")
        axes[0].set_title("Quality vs latency")
        axes[1].set_title("Quality vs bytes")
        fig.tight_layout()
        return save(
            fig,
            out_dir,
            "deploy_pareto",
            "Deployed: quality vs latency and vs bytes on disk",
            f"Every deployed option of {stage.model} at batch {b}: its {stage.metric} against the FP32 PyTorch model "
            "on held-out data (bars: 95 % intervals), against its latency as a ratio to FP32 timed interleaved in the "
            "same run (left, ONNX Runtime) and against the bytes of the file the runtime loads (right). Colour: "
            "quantization blue, pruning red, FP32 black; squares run on torch. The dashed step line is the Pareto "
            f"front. Measured on {stage.machine}: other hardware gives other answers.",
        )


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _esc(x: Any) -> str:
    return html.escape(str(x))


def deploy_section_html(stage: Any, figure_html: str = "", note: str = "") -> str:
    """The section (trusted HTML built here, every value escaped): the answers, the figure (``figure_html``,
    as the page renders figures), the table of options and the notes. ``stage`` None: just ``note``."""
    if stage is None:
        if not note:
            return ""
        return f"<section id='deployment'><h2>Deployment</h2><p class='note'>{_esc(note)}</p></section>"
    s = "<section id='deployment'><h2>Deployment: real bytes and real latency on this machine</h2>"
    s += "<ul>" + "".join(f"<li>{_esc(a.text)}</li>" for a in stage.answers) + "</ul>"
    s += figure_html
    batches = list(stage.batches)
    head = ["option", "runtime", "family", "MB on disk", "compressed ckpt MB"]
    head += [f"latency x FP32, batch {b}" for b in batches]
    head += [f"{stage.metric} [95 % CI]", "n", "max |diff| vs PyTorch", "peak MB", "note"]
    rows = []
    for r in stage.table():
        if r["status"] != "ok":
            cells = [
                r["option"],
                r["runtime"],
                r["family"],
                "-",
                "-",
                *["-"] * len(batches),
                "-",
                "-",
                "-",
                "-",
            ]
            cells.append("skipped: " + r["note"])
        else:
            q = f"{_fmt(r['value'], 3)} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
            cells = [r["option"], r["runtime"], r["family"], _fmt(r["mb"]), _fmt(r["checkpoint_mb"])]
            cells += [_fmt(r.get(f"ratio_b{b}")) for b in batches]
            cells += [q, _fmt(r["n"]), _fmt(r["check_max_abs"], 6) if _ok(r["check_max_abs"]) else "-"]
            cells += [_fmt(r["peak_mb"], 0), r["note"]]
        rows.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in cells) + "</tr>")
    s += (
        "<div class='scroll'><table id='tbl-deploy'><thead><tr>"
        + "".join(f"<th>{_esc(h)}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )
    fronts = stage.fronts()
    s += "<p class='note'>Pareto front (batch " + _esc(max(batches)) + "): latency "
    s += _esc(", ".join(fronts["latency"].get(max(batches), [])) or "-") + "; bytes "
    s += _esc(", ".join(fronts["bytes"].get(max(batches), [])) or "-") + ".</p>"
    s += "<ul>" + "".join(
        f"<li class='note'>{_esc(n)}</li>" for n in [*stage.notes, f"Machine: {stage.machine}."]
    )
    s += "</ul></section>"
    return s
