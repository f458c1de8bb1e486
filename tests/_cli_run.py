"""Run the ``pvq`` CLI in this process and capture what it prints (a subprocess would re-import torch: slow on a
loaded machine). Shared by the CLI test files."""

from __future__ import annotations

import contextlib
import io
import subprocess

from pvq.cli import main


def run_pvq(*args: str) -> subprocess.CompletedProcess[str]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())
