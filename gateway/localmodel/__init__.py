"""The local model: a continuous-batching engine (`engine`, `model`) served through Triton
Inference Server by PyTriton (`server`) under TensorRT-LLM's ensemble tensor interface."""
