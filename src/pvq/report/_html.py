"""The one-page HTML report of ``pvq compare``: self-contained (inline PNGs, CSS and JS), opens offline."""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from pvq.report._fig_compare import FAMILY_COLORS, Figure

__all__ = ["render_compare_html", "fmt_num"]

_CSS = """
:root{--fg:#1d2330;--mut:#5b6475;--bg:#f6f7fb;--card:#fff;--line:#e3e6ee;--q:#1f77b4;--p:#d62728;--warn:#b26a00}
*{box-sizing:border-box}body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{background:#1d2330;color:#fff;padding:22px 32px}header h1{margin:0;font-size:22px;font-weight:600}
header .sub{color:#b9c0cf;font-size:13px;margin-top:4px}main{max-width:1180px;margin:0 auto;padding:20px 24px 60px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 22px;margin:18px 0;overflow-x:auto}
h2{font-size:17px;margin:0 0 10px}h3{font-size:14px;margin:14px 0 6px}
.verdict{font-size:18px;line-height:1.45}.verdict b{font-weight:650}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;color:#fff;font-weight:600;vertical-align:1px}
.warn{background:#fff6e5;border-left:4px solid var(--warn);padding:8px 12px;margin:8px 0;border-radius:4px}
.note{color:var(--mut);font-size:13px}.kpis{display:flex;gap:14px;flex-wrap:wrap;margin:10px 0 2px}
.kpi{flex:1 1 150px;background:var(--bg);border-radius:8px;padding:10px 14px}.kpi .v{font-size:20px;font-weight:650}.kpi .l{color:var(--mut);font-size:12px}
table{border-collapse:collapse;width:100%;font-size:12.5px}th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}th{background:#eef1f7;position:sticky;top:0;cursor:pointer;user-select:none}
th.sorted-asc::after{content:" \\25B2";font-size:9px}th.sorted-desc::after{content:" \\25BC";font-size:9px}
tr:hover td{background:#f3f6fc}.scroll{max-height:520px;overflow:auto;border:1px solid var(--line);border-radius:6px}
.scroll th{white-space:normal;vertical-align:bottom;min-width:3.2em}.scroll td,.scroll th{padding:4px 6px}
.scroll td:first-child{position:sticky;left:0;background:var(--card);z-index:1}.scroll th:first-child{left:0;z-index:2}
figure{margin:14px 0}figure img{max-width:100%;height:auto;display:block;margin:0 auto}figcaption{color:var(--mut);font-size:12.5px;margin-top:6px}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:14px}@media(max-width:900px){.grid2{grid-template-columns:1fr}}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}pre{background:var(--bg);padding:10px;border-radius:6px;overflow:auto}
input.filter{padding:5px 8px;border:1px solid var(--line);border-radius:6px;width:260px;margin-bottom:8px}
a{color:var(--q)}ul{margin:6px 0;padding-left:20px}
"""

# Records script errors and image load status into <body data-*> so a headless browser test can read them.
_HEALTH_JS = """
window.__pvqErrors=[];
window.addEventListener('error',function(e){window.__pvqErrors.push(String(e.message||e.type||'error'));},true);
(function(){var ce=console.error;console.error=function(){window.__pvqErrors.push(Array.prototype.join.call(arguments,' '));return ce.apply(console,arguments);};})();
window.addEventListener('load',function(){
  var imgs=Array.prototype.slice.call(document.images);
  var broken=imgs.filter(function(i){return !(i.complete&&i.naturalWidth>0);});
  var b=document.body;b.setAttribute('data-pvq-images',imgs.length);b.setAttribute('data-pvq-broken',broken.length);
  b.setAttribute('data-pvq-errors',window.__pvqErrors.length);b.setAttribute('data-pvq-error-text',window.__pvqErrors.join(' | ').slice(0,500));
  b.setAttribute('data-pvq-ready','1');
});
"""

_TABLE_JS = """
function pvqSort(th){
  var table=th.closest('table'),idx=Array.prototype.indexOf.call(th.parentNode.children,th),tbody=table.tBodies[0];
  var asc=!th.classList.contains('sorted-asc');
  Array.prototype.forEach.call(th.parentNode.children,function(h){h.classList.remove('sorted-asc','sorted-desc');});
  th.classList.add(asc?'sorted-asc':'sorted-desc');
  var rows=Array.prototype.slice.call(tbody.rows);
  rows.sort(function(a,b){
    var x=a.cells[idx].getAttribute('data-v'),y=b.cells[idx].getAttribute('data-v');
    var nx=parseFloat(x),ny=parseFloat(y),c;
    if(!isNaN(nx)&&!isNaN(ny)){c=nx-ny;}else{c=String(x).localeCompare(String(y));}
    return asc?c:-c;});
  rows.forEach(function(r){tbody.appendChild(r);});
}
function pvqFilter(inp,id){
  var q=inp.value.toLowerCase(),rows=document.getElementById(id).tBodies[0].rows;
  for(var i=0;i<rows.length;i++){rows[i].style.display=rows[i].cells[0].textContent.toLowerCase().indexOf(q)>=0?'':'none';}
}
document.addEventListener('click',function(e){var th=e.target.closest&&e.target.closest('th[data-sort]');if(th){pvqSort(th);}});
// '#selftest': sort the per-tensor table by its weights column, both ways, and record whether it worked
window.addEventListener('load',function(){
  if(location.hash!=='#selftest'){return;}
  var t=document.getElementById('tbl-tensors'),ok=!!t;
  if(t){
    var th=t.tHead.rows[0].cells[3];
    [true,false].forEach(function(asc){
      th.click();
      var v=Array.prototype.map.call(t.tBodies[0].rows,function(r){return parseFloat(r.cells[3].getAttribute('data-v'));});
      for(var i=1;i<v.length;i++){if(asc?v[i]<v[i-1]:v[i]>v[i-1]){ok=false;}}
    });
  }
  document.body.setAttribute('data-pvq-sort',ok?'ok':'bad');
});
"""


def fmt_num(x: Any, digits: int = 2) -> str:
    """Format a number for the page: ``inf`` for infinite, ``-`` for missing."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return f"{x:.{digits}f}"
    return str(x)


def _sort_key(x: Any) -> str:
    if isinstance(x, bool):
        return str(int(x))
    if isinstance(x, (int, float)):
        if isinstance(x, float) and math.isnan(x):
            return "-1e308"
        return "1e308" if x == math.inf else ("-1e308" if x == -math.inf else repr(float(x)))
    return str(x)


def _esc(s: Any) -> str:
    return html.escape(str(s))


def _badge(family: str) -> str:
    color = FAMILY_COLORS.get(family, "#555")
    return f'<span class="badge" style="background:{color}">{_esc(family)}</span>'


def _table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]], table_id: str, digits: int = 2
) -> str:
    """A sortable table: ``columns`` = (key, header)."""
    head = "".join(f'<th data-sort="1" title="sort by {_esc(h)}">{_esc(h)}</th>' for _, h in columns)
    body = []
    for r in rows:
        cells = []
        for k, _ in columns:
            v = r.get(k)
            shown = (
                _badge(v)
                if k in ("winner", "family", "recommended") and v in FAMILY_COLORS
                else _esc(fmt_num(v, digits))
            )
            cells.append(f'<td data-v="{_esc(_sort_key(v))}">{shown}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _figure(f: Figure) -> str:
    data = base64.b64encode(f.png.read_bytes()).decode("ascii")
    return (
        f'<figure id="fig-{_esc(f.key)}"><img alt="{_esc(f.title)}" src="data:image/png;base64,{data}">'
        f"<figcaption><b>{_esc(f.title)}.</b> {_esc(f.caption)} "
        f'<a href="figures/{_esc(f.png.name)}">PNG</a> · <a href="figures/{_esc(f.svg.name)}">SVG</a></figcaption></figure>'
    )


def _granularity_table(summary: Sequence[Mapping[str, Any]]) -> str:
    """Per granularity and bit-width: quantization vs magnitude pruning at equal real bits per weight."""
    if not summary:
        return ""
    rows = [
        {
            **r,
            "wins": f"{r['quant_wins']}/{r['tensors']}",
            "interval": f"{100 * r['quant_win_low']:.0f}-{100 * r['quant_win_high']:.0f} %",
            "paper": f"{r['quant_wins_paper']}/{r['tensors']}",
        }
        for r in summary
    ]
    cols = [
        ("recipe", "quantization"),
        ("mean_real_bits", "real bits/w"),
        ("wins", "quant wins"),
        ("interval", "95 % Wilson"),
        ("median_quant_snr_db", "median quant SNR"),
        ("median_prune_snr_db", "median prune SNR (same real bits)"),
        ("paper", "quant wins (paper: mask free, keep b/16)"),
    ]
    return (
        "<h3>Granularity: quantization vs pruning at equal real bits per weight</h3>"
        "<p class='note'>Each quantization granularity pays what a checkpoint stores (codes with row padding, "
        "FP16 scales, zero points); magnitude pruning of the same tensor gets exactly as many bits, FP16 values "
        "plus its stored bitmask. The last column is the paper's accounting.</p>"
        + _table(rows, cols, "tbl-granularity", digits=3)
    )


def render_compare_html(ctx: Mapping[str, Any], figures: Mapping[str, Figure]) -> str:
    """The report page. ``ctx`` keys (all plain data): ``title``, ``subtitle``, ``verdict_html`` (trusted
    HTML built by pvq), ``kpis`` [(value, label)], ``warnings`` [str], ``notes`` [str], ``bits_summary``,
    ``allocation_rows``, ``allocation_summary`` [rows], ``natural_sparsity`` [rows], ``tensor_rows``,
    ``granularity_summary`` [rows], ``layer_verdicts`` [rows], ``layers_note`` str, ``config`` dict, ``version`` str, ``files`` [str],
    ``deploy_html`` (the deployment section, :mod:`pvq.report._deploy_section`; optional).
    ``figures``: key -> Figure (embedded as base64 PNG)."""
    fig = {k: _figure(v) for k, v in figures.items()}
    parts: list[str] = []
    parts.append(
        f"<section id='verdict'><h2>Verdict</h2><div class='verdict'>{ctx['verdict_html']}</div>"
        + "<div class='kpis'>"
        + "".join(
            f"<div class='kpi'><div class='v'>{_esc(v)}</div><div class='l'>{_esc(lbl)}</div></div>"
            for v, lbl in ctx.get("kpis", [])
        )
        + "</div>"
        + "".join(f"<div class='warn'>{_esc(w)}</div>" for w in ctx.get("warnings", []))
        + "</section>"
    )
    if "measured_quality" in fig:
        parts.append(
            "<section id='measured'><h2>Measured: the model's quality vs its real size</h2>"
            + fig["measured_quality"]
            + "</section>"
        )
    parts.append(ctx.get("deploy_html", ""))  # pvq.report._deploy_section: trusted HTML, values escaped there
    s = "<section id='by-bits'><h2>Tensor by tensor, at each bit budget</h2>"
    s += fig.get("verdict_by_bits", "")
    bs = ctx.get("bits_summary", [])
    if bs:
        rows = [
            {
                "bits": r["bits"],
                "majority": r["majority"],
                **{f"wins_{k}": v for k, v in r["wins"].items()},
                "close_calls": r["close_calls"],
                "median_quant_snr_db": r["median_quant_snr_db"],
                "median_prune_snr_db": r["median_prune_snr_db"],
            }
            for r in bs
        ]
        fams = sorted({k for r in rows for k in r if k.startswith("wins_")})
        cols = [("bits", "bits"), ("majority", "winner")] + [(f, f"wins: {f[5:]}") for f in fams]
        cols += [
            ("close_calls", "close calls"),
            ("median_quant_snr_db", "median quant SNR"),
            ("median_prune_snr_db", "median prune SNR"),
        ]
        s += _table(rows, cols, "tbl-bits")
    s += _granularity_table(ctx.get("granularity_summary") or [])
    s += "<div class='grid2'>" + fig.get("snr_scatter", "") + fig.get("theory_kurtosis", "") + "</div>"
    s += fig.get("kurtosis_map", "") + "</section>"
    parts.append(s)

    s = "<section id='budget'><h2>Whole model under a size budget</h2>"
    if ctx.get("allocation_summary"):
        s += _table(
            ctx["allocation_summary"],
            [
                ("allocation", "allocation"),
                ("budget_bits", "budget (bits/w)"),
                ("avg_bits", "used (bits/w)"),
                ("snr_db", "model SNR (dB)"),
                ("families", "tensors per family"),
            ],
            "tbl-alloc-summary",
        )
    s += (
        "<div class='grid2'>"
        + fig.get("budget_curve", "")
        + "<div>"
        + ctx.get("allocation_text_html", "")
        + "</div></div>"
    )
    s += fig.get("allocation", "")
    if ctx.get("allocation_rows"):
        s += "<h3>Recommended option per tensor</h3><div class='scroll'>"
        s += _table(
            ctx["allocation_rows"],
            [
                ("name", "tensor"),
                ("numel", "weights"),
                ("family", "family"),
                ("label", "option"),
                ("bits_per_weight", "bits/w"),
                ("overhead_bits", "overhead bits/w"),
                ("snr_db", "SNR (dB)"),
            ],
            "tbl-alloc",
        )
        s += "</div>"
    s += "</section>"
    parts.append(s)

    s = "<section id='layers'><h2>Layer by layer: output error with calibration data</h2>"
    s += f"<p class='note'>{_esc(ctx.get('layers_note', ''))}</p>"
    if ctx.get("layer_verdicts"):
        s += _table(
            ctx["layer_verdicts"],
            [
                ("layer", "layer"),
                ("bits", "bits"),
                ("winner", "winner"),
                ("chunks", "chunks"),
                ("quant_wins", "quant wins"),
                ("certain_chunks", "settled"),
                ("median_quant_snr_db", "median quant SNR"),
                ("median_prune_snr_db", "median prune SNR"),
                ("kind", "kind"),
                ("uncertain", "uncertain"),
            ],
            "tbl-layers",
        )
    s += fig.get("layerwise", "") + "</section>"
    parts.append(s)

    if ctx.get("natural_sparsity"):
        s = "<section id='natural-sparsity'><h2>Natural sparsity of quantized tensors (paper Table 2)</h2>"
        s += "<p class='note'>Share of weights that INT-b quantization rounds to exactly zero, averaged over tensors; the paper's column is its PyTorch model-zoo average.</p>"
        s += _table(
            ctx["natural_sparsity"],
            [
                ("bits", "bits"),
                ("avg_quant_sparsity_percent", "this model (%)"),
                ("paper_percent", "paper (%)"),
            ],
            "tbl-natsp",
            digits=1,
        )
        s += "</section>"
        parts.append(s)

    if ctx.get("tensor_rows"):
        cols = ctx.get("tensor_columns") or [(k, k) for k in ctx["tensor_rows"][0]]
        s = "<section id='tensors'><h2>Every tensor</h2><p class='note'>Click a header to sort; type to filter by name. The table scrolls sideways (the tensor name stays in view) when it is wider than the page.</p>"
        s += "<input class='filter' placeholder='filter by tensor name' oninput=\"pvqFilter(this,'tbl-tensors')\">"
        s += (
            "<div class='scroll'>"
            + _table(ctx["tensor_rows"], [tuple(c) for c in cols], "tbl-tensors")
            + "</div></section>"
        )
        parts.append(s)

    s = "<section id='config'><h2>How this was computed</h2><ul>"
    s += "".join(f"<li>{_esc(n)}</li>" for n in ctx.get("notes", []))
    s += (
        "</ul><h3>Configuration</h3><pre>"
        + _esc(json.dumps(ctx.get("config", {}), indent=1, default=str))
        + "</pre>"
    )
    if ctx.get("files"):
        s += (
            "<h3>Files</h3><ul>"
            + "".join(f"<li><a href='{_esc(f)}'>{_esc(f)}</a></li>" for f in ctx["files"])
            + "</ul>"
        )
    s += f"<p class='note'>pvq {_esc(ctx.get('version', ''))} · after Kuzmin et al., “Pruning vs Quantization: Which is Better?”, NeurIPS 2023.</p></section>"
    parts.append(s)

    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{_esc(ctx.get('title', 'pvq report'))}</title><script>{_HEALTH_JS}</script><style>{_CSS}</style></head><body>"
        f"<header><h1>{_esc(ctx.get('title', 'pvq report'))}</h1><div class='sub'>{_esc(ctx.get('subtitle', ''))}</div></header>"
        f"<main>{''.join(parts)}</main><script>{_TABLE_JS}</script></body></html>"
    )
