"""More models in the same Triton server: bind every model folder that appears in a directory.

    python -m gateway.localmodel.server ... --models-dir var/finetune/models

Fine-tuning workers publish merged models there (`finetune.modelio`): a folder per model
(config.json, safetensors weights, tokenizer, chat template) plus `llmops-model.json`, moved into
place whole, so a folder that exists is complete. The folder's name is the Triton model name.
At start-up every folder is bound; then the directory is polled and each new folder is loaded
into its own engine and bound to the running server (PyTriton loads models bound after
`run()`), under the same TensorRT-LLM-style interface as the base model. Folders whose name
starts with "." are work in progress and skipped; a folder that fails to load is retried only
when its manifest changes. Removing a folder does not unbind its model (restart to drop it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("gateway.localmodel.extra_models")
MANIFEST = "llmops-model.json"


class ModelsDirWatcher:
    def __init__(self, models_dir: Path, bind_folder: Callable[[str, Path], None], poll_s: float = 2.0) -> None:
        self.models_dir = models_dir
        self.bind_folder = bind_folder
        self.poll_s = poll_s
        self.bound: set[str] = set()
        self._failed: dict[str, float] = {}  # name -> manifest mtime that failed
        self._stop = threading.Event()
        # Held while a model is bound: PyTriton counts a model that is still loading as dead,
        # so the server's liveness check waits for the bind instead of shutting everything down.
        self.binding = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="models-dir-watcher", daemon=True)

    def scan(self) -> list[str]:
        """Bind the folders not bound yet; returns the names bound by this call."""
        if not self.models_dir.is_dir():
            return []
        added = []
        for folder in sorted(self.models_dir.iterdir()):
            manifest = folder / MANIFEST
            name = folder.name
            if name.startswith(".") or name in self.bound or not manifest.is_file():
                continue
            mtime = manifest.stat().st_mtime
            if self._failed.get(name) == mtime:
                continue
            try:
                with self.binding:
                    self.bind_folder(name, folder)
            except Exception:
                log.exception("could not serve model folder %s", folder)
                self._failed[name] = mtime
                continue
            self.bound.add(name)
            added.append(name)
            log.info("serving %s from %s", name, folder)
        return added

    def alive(self, triton: Any) -> bool:
        """`triton.is_alive()`, asked between binds."""
        with self.binding:
            return bool(triton.is_alive())

    def _run(self) -> None:
        while True:  # the first scan runs here too, so start-up does not wait for model loads
            try:
                self.scan()
            except Exception:  # an unreadable directory must not end the watch
                log.exception("scanning %s failed", self.models_dir)
            if self._stop.wait(self.poll_s):
                return

    def start(self) -> ModelsDirWatcher:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)


def watch(models_dir: str, triton: Any, bind: Callable[..., None], make_server: Callable[[Any], Any],
          engine_kwargs: dict[str, Any], max_batch_size: int, batch_delay_us: int) -> tuple[ModelsDirWatcher, list[Any]]:
    """Start watching `models_dir`; returns the watcher and the list its engines are added to."""
    from gateway.localmodel.engine import Engine, SamplingParams

    engines: list[Any] = []

    def bind_folder(name: str, folder: Path) -> None:
        engine = Engine.load(folder, **engine_kwargs, name=name)
        try:
            engine.generate("Hello", SamplingParams(max_tokens=2))  # warm up before the first request
            bind(triton, name, make_server(engine), max_batch_size, batch_delay_us)
        except BaseException:
            engine.close()
            raise
        engines.append(engine)

    return ModelsDirWatcher(Path(models_dir), bind_folder).start(), engines
