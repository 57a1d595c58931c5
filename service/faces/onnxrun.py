"""ONNX Runtime as every network of the engine runs on it: one core per worker process."""

from __future__ import annotations

import onnxruntime


def one_core_session(
    model: bytes, config: dict[str, str] | None = None
) -> onnxruntime.InferenceSession:
    """A CPU session for a serialised ONNX model, on one thread (the scan runs a worker process a
    core), quiet but for errors; `config` adds session configuration entries."""
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    for key, value in (config or {}).items():
        options.add_session_config_entry(key, value)
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
