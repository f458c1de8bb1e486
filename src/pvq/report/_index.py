"""The index page of ``pvq reproduce all``: every figure and table, each with what differs from the paper."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pvq._io import atomic_write_text
from pvq.report._html import _CSS, _HEALTH_JS

__all__ = ["IndexEntry", "write_reproduce_index"]

TRAINED = ("table1", "fig5", "fig8")  # reproductions whose numbers come from fine-tuning runs


@dataclass
class IndexEntry:
    """One reproduction: its ``name`` (fig1, table2, ...), ``notes`` (what differs from the paper), the
    files it wrote (figures, result.json) and how many rows it produced."""

    name: str
    notes: list[str]
    files: list[Path]
    rows: int
    meta: dict[str, Any] = field(default_factory=dict)


def write_reproduce_index(
    out: Path, entries: Sequence[IndexEntry], config: dict[str, Any], version: str
) -> Path:
    """Write ``out/index.html`` linking every figure (PNG shown, SVG linked) and result file."""
    out = Path(out)
    e = html.escape
    parts = []
    smoke = config.get("preset") == "smoke"
    toc = " · ".join(f"<a href='#{e(x.name)}'>{e(x.name)}</a>" for x in entries)
    for x in entries:
        rel = [p.relative_to(out) if p.is_relative_to(out) else p for p in x.files]
        pngs = [p for p in rel if str(p).endswith(".png")]
        others = [p for p in rel if not str(p).endswith(".png")]
        s = f"<section id='{e(x.name)}'><h2>{e(x.name)}</h2><p class='note'>{x.rows} rows · <a href='{e(x.name)}/result.json'>result.json</a>"
        s += "".join(f" · <a href='{e(str(p))}'>{e(p.name)}</a>" for p in others) + "</p>"
        if x.notes:
            s += (
                "<div class='warn'><b>What differs from the paper:</b><ul>"
                + "".join(f"<li>{e(n)}</li>" for n in x.notes)
                + "</ul></div>"
            )
        if smoke and x.name in TRAINED:
            s += (
                "<div class='warn'><b>Smoke preset:</b> cut to seconds (a few training steps), run only to check the "
                "pipeline; these accuracies are not meaningful (run <code>--preset cpu</code> or <code>gpu</code>).</div>"
            )
        for p in rel:
            if str(p).endswith(".md"):
                s += _markdown_table(out / p if not Path(p).is_absolute() else Path(p))
        for p in pngs:
            s += f"<figure><img alt='{e(p.name)}' src='{e(str(p))}'><figcaption>{e(str(p))}</figcaption></figure>"
        parts.append(s + "</section>")
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>pvq reproduce all</title>"
        f"<script>{_HEALTH_JS}</script><style>{_CSS}</style></head><body>"
        f"<header><h1>pvq reproduce all</h1><div class='sub'>Every figure and table of “Pruning vs Quantization: Which is Better?” "
        f"that pvq recomputes offline · preset {e(str(config.get('preset', '')))} · pvq {e(version)}</div></header>"
        + "<main>"
        + (
            "<div class='warn'><b>Smoke preset:</b> every run here is cut short to check the pipeline; the "
            "fine-tuning accuracies (table1, fig5, fig8) are not meaningful.</div>"
            if smoke
            else ""
        )
        + f"<section><h2>Contents</h2><p>{toc}</p><pre>{e(json.dumps(config, indent=1))}</pre></section>{''.join(parts)}</main></body></html>"
    )
    path = out / "index.html"
    atomic_write_text(path, page)
    return path


def _markdown_table(path: Path) -> str:
    """A pipe table written by a reproduction (e.g. ``table1.md``) as an HTML table; '' when it holds none."""
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip().startswith("|")]
    except OSError:
        return ""
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    rows = [r for r in rows if not all(set(c) <= set("-: ") for c in r)]  # drop the |---| rule
    if len(rows) < 2:
        return ""
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
    return f"<table class='md'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
