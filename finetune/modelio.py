"""Loading base models, saving merged ones as servable folders, and naming them.

A published model is a folder the local model server loads like any Hugging Face checkpoint:

    <models_dir>/<serving name>/config.json, model.safetensors, generation_config.json,
                                tokenizer files, chat template, llmops-model.json (written last)

It is assembled under a dot-name and renamed into place, so a watcher of `models_dir` sees a
whole model or nothing. `llmops-model.json` names the public model (`ft:<base>:<suffix>:<id>`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from finetune.settings import BaseModelSpec

MANIFEST = "llmops-model.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def public_name(base: str, suffix: str | None, job_id: str) -> str:
    """OpenAI's shape, `ft:<base>:<suffix>:<id>`: the id is the job's random part, cut to 8."""
    return f"ft:{base}:{suffix or ''}:{job_id.removeprefix('ftjob-')[:8]}"


def serving_name(public: str) -> str:
    """The name inside Triton, which allows only letters, digits, '.', '_' and '-'."""
    return _UNSAFE.sub("-", public).strip("-")


def _gguf_of(folder: Path, spec: BaseModelSpec) -> str | None:
    if spec.gguf_file:
        return spec.gguf_file
    found = sorted(p.name for p in folder.glob("*.gguf"))
    return found[0] if found else None


def load_tokenizer(folder: Path, spec: BaseModelSpec) -> Any:
    from transformers import AutoTokenizer

    if (folder / "tokenizer.json").exists() or (folder / "tokenizer_config.json").exists():
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=_gguf_of(folder, spec), local_files_only=True)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # padding positions are masked out anyway
    return tokenizer


def load_base(folder: Path, spec: BaseModelSpec) -> Any:
    """The base model in float32 (GGUF weights are dequantised by transformers), offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModelForCausalLM

    gguf = _gguf_of(folder, spec)
    kwargs: dict[str, Any] = {"dtype": torch.float32, "local_files_only": True}
    if gguf:
        kwargs["gguf_file"] = gguf
    model = AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)
    _forget_quantisation(model)
    return model


def _forget_quantisation(model: Any) -> None:
    # A GGUF file is dequantised to float32 at load, but transformers keeps its GGUF "quantizer",
    # which refuses save_pretrained. Nothing quantised is left in memory, so drop the marker.
    model.hf_quantizer = None
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    for attr in ("is_quantized", "quantization_method"):
        if attr in getattr(model, "__dict__", {}):
            delattr(model, attr)


def save_model_folder(model: Any, tokenizer: Any, out: Path, manifest: dict[str, Any]) -> Path:
    """Write a servable folder at `out` (assembled beside it, then renamed into place)."""
    tmp = out.parent / f".{out.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _forget_quantisation(model)
    model.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def publish(candidate: Path, models_dir: Path, name: str) -> Path:
    """Move a saved candidate folder into the served models directory under `name`."""
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = models_dir / f".{name}.incoming"
    final = models_dir / name
    shutil.rmtree(staging, ignore_errors=True)
    # copy then rename: `candidate` may sit on another file system than the shared models dir
    shutil.copytree(candidate, staging)
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    return final
