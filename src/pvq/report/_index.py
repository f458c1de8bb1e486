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
        for p in pngs:
            s += f"<figure><img alt='{e(p.name)}' src='{e(str(p))}'><figcaption>{e(str(p))}</figcaption></figure>"
        parts.append(s + "</section>")
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>pvq reproduce all</title>"
        f"<script>{_HEALTH_JS}</script><style>{_CSS}</style></head><body>"
        f"<header><h1>pvq reproduce all</h1><div class='sub'>Every figure and table of “Pruning vs Quantization: Which is Better?” "
        f"that pvq recomputes offline · preset {e(str(config.get('preset', '')))} · pvq {e(version)}</div></header>"
        f"<main><section><h2>Contents</h2><p>{toc}</p><pre>{e(json.dumps(config, indent=1))}</pre></section>{''.join(parts)}</main></body></html>"
    )
    path = out / "index.html"
    atomic_write_text(path, page)
    return path
