"""The local model server's Triton interface, seen with plain tritonclient / HTTP (no gateway code):
TensorRT-LLM ensemble tensor names, decoupled streaming with the final flag, batched rows."""

from __future__ import annotations

import queue
from typing import Any

import httpx
import numpy as np
import tritonclient.grpc as grpcclient

PROMPT = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"


def _input(name: str, arr: np.ndarray, dtype: str) -> Any:
    t = grpcclient.InferInput(name, list(arr.shape), dtype)
    t.set_data_from_numpy(arr)
    return t


def _stream(url: str, model: str, inputs: list[Any]) -> list[tuple[Any, Any]]:
    results: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client = grpcclient.InferenceServerClient(url)
    try:
        client.start_stream(callback=lambda result, error: results.put((result, error)))
        client.async_stream_infer(model, inputs, enable_empty_final_response=True)
        out = []
        while True:
            result, error = results.get(timeout=120)
            out.append((result, error))
            if error is not None:
                break
            if result.get_response().parameters["triton_final_response"].bool_param:
                break
        client.stop_stream()
        return out
    finally:
        client.close()


def test_model_config_has_trtllm_tensor_names(local_triton: Any) -> None:
    client = grpcclient.InferenceServerClient(local_triton.grpc)
    try:
        meta = client.get_model_metadata(local_triton.model, as_json=True)
        config = client.get_model_config(local_triton.model, as_json=True)["config"]
    finally:
        client.close()
    inputs = {t["name"]: t["datatype"] for t in meta["inputs"]}
    assert inputs["text_input"] == "BYTES" and inputs["max_tokens"] == "INT32"
    assert inputs["temperature"] == "FP32" and inputs["top_p"] == "FP32"
    assert inputs["stop_words"] == "BYTES" and inputs["stream"] == "BOOL"
    assert inputs["random_seed"] == "UINT64" and inputs["seed"] == "INT64"
    outputs = {t["name"] for t in meta["outputs"]}
    assert {"text_output", "finish_reason", "prompt_tokens", "completion_tokens"} <= outputs
    assert config["model_transaction_policy"]["decoupled"] is True


def test_decoupled_stream_with_final_flag(local_triton: Any) -> None:
    inputs = [
        _input("text_input", np.array([[PROMPT.encode()]], dtype=object), "BYTES"),
        _input("max_tokens", np.array([[12]], dtype=np.int32), "INT32"),
        _input("stream", np.array([[True]], dtype=bool), "BOOL"),
    ]
    responses = _stream(local_triton.grpc, local_triton.model, inputs)
    assert all(error is None for _, error in responses)
    data = [r for r, _ in responses if r.as_numpy("text_output") is not None]
    final_flags = [r.get_response().parameters["triton_final_response"].bool_param for r, _ in responses]
    assert final_flags[-1] and not any(final_flags[:-1])
    text = "".join(r.as_numpy("text_output").reshape(-1)[0].decode() for r in data)
    assert "Paris" in text
    last = data[-1]
    assert last.as_numpy("finish_reason").reshape(-1)[0] == b"stop"
    assert int(last.as_numpy("completion_tokens").reshape(-1)[0]) >= len(data) - 1


def test_non_stream_single_response(local_triton: Any) -> None:
    inputs = [
        _input("text_input", np.array([[PROMPT.encode()]], dtype=object), "BYTES"),
        _input("max_tokens", np.array([[4]], dtype=np.int32), "INT32"),
    ]
    responses = _stream(local_triton.grpc, local_triton.model, inputs)
    data = [r for r, _ in responses if r.as_numpy("text_output") is not None]
    assert len(data) == 1
    assert data[0].as_numpy("finish_reason").reshape(-1)[0] == b"length"
    assert int(data[0].as_numpy("completion_tokens").reshape(-1)[0]) == 4


def test_batched_rows_in_one_request(local_triton: Any) -> None:
    """Two rows in one request (as TRT-LLM accepts): answered together, one response per yield."""
    prompts = [PROMPT, PROMPT.replace("France", "Italy")]
    inputs = [
        _input("text_input", np.array([[p.encode()] for p in prompts], dtype=object), "BYTES"),
        _input("max_tokens", np.array([[6], [6]], dtype=np.int32), "INT32"),
    ]
    responses = _stream(local_triton.grpc, local_triton.model, inputs)
    data = [r for r, _ in responses if r.as_numpy("text_output") is not None]
    assert len(data) == 1
    texts = [t.decode() for t in data[0].as_numpy("text_output").reshape(-1)]
    assert len(texts) == 2 and all(texts)
    assert list(data[0].as_numpy("completion_tokens").reshape(-1)) == [6, 6]


def test_http_generate_endpoints(local_triton: Any) -> None:
    body = {"text_input": PROMPT, "max_tokens": 12, "stop_words": ["Paris"]}
    with httpx.Client(base_url=f"http://{local_triton.http}", timeout=120) as client:
        one = client.post(f"/v2/models/{local_triton.model}/generate", json=body).json()
        stream = client.post(f"/v2/models/{local_triton.model}/generate_stream", json={**body, "stream": True})
    assert one["finish_reason"] == "stop" and "Paris" not in one["text_output"]
    events = [line for line in stream.text.splitlines() if line.startswith("data:")]
    assert len(events) > 1
    assert '"finish_reason":"stop"' in events[-1]


def test_invalid_input_is_a_clean_error(local_triton: Any) -> None:
    inputs = [
        _input("text_input", np.array([[PROMPT.encode()]], dtype=object), "BYTES"),
        _input("max_tokens", np.array([[4]], dtype=np.int32), "INT32"),
        _input("temperature", np.array([[-1.0]], dtype=np.float32), "FP32"),
    ]
    responses = _stream(local_triton.grpc, local_triton.model, inputs)
    errors = [e for _, e in responses if e is not None]
    assert errors and "[invalid_request]" in str(errors[0])
