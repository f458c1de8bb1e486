"""TEMPORARY stand-in for helper "save"'s writer (the integrator takes save's file over this one).

``save_compressed(result, out_dir, force=...)`` writes ``model.dequantized.safetensors`` (the dequantized state
dict of ``result.module``, the file name save's version uses for it) and ``manifest.json`` (recipe per tensor, bits per weight, seconds) into ``out_dir``,
built in a temporary folder next to it and renamed into place, so no half-written checkpoint is left.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pvq._io import to_jsonable
from pvq.errors import PvqInputError

__all__ = ["save_compressed"]


def save_compressed(
    result: Any,
    out_dir: str | os.PathLike[str],
    *,
    force: bool = False,
    model_config: Any = None,
    source_path: Any = None,
) -> list[Path]:
    """Write the compressed model under ``out_dir``; refuses an existing ``out_dir`` unless ``force``.
    ``model_config``/``source_path`` are accepted for save's signature and not used here."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    if out.exists() and not force:
        raise PvqInputError(f"--out: {out} exists (use --force to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        # tied weights share storage, which safetensors refuses: each key gets its own contiguous copy
        state = {k: v.detach().cpu().clone().contiguous() for k, v in result.module.state_dict().items()}
        save_file(state, str(tmp / "model.dequantized.safetensors"))
        manifest = {**result.summary(), "tensors": [r.to_json() for r in result.rows]}
        (tmp / "manifest.json").write_text(json.dumps(to_jsonable(manifest), indent=1), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        umask = os.umask(0)
        os.umask(umask)
        for f in tmp.iterdir():  # mkdtemp and safetensors create owner-only files: the usual permissions
            f.chmod(0o666 & ~umask)
        tmp.chmod(0o777 & ~umask)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [out / "model.dequantized.safetensors", out / "manifest.json"]
