"""pvq.report: the figures (matplotlib, PNG + SVG) and the self-contained HTML report.

The only package that imports matplotlib; import it lazily from the CLI.
"""

from pvq.report._compare_report import theory_curve, write_compare_report
from pvq.report._fig_compare import Figure
from pvq.report._html import render_compare_html

__all__ = ["Figure", "render_compare_html", "theory_curve", "write_compare_report"]
