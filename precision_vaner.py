"""Precision policy of VANER inference: `choose_dtype("auto", device)` is bf16 on CUDA and on CPUs with native
bf16 (AVX512-BF16 or AMX), else float32, and logs what it chose and why; `VANER_AUTO_CPU_DTYPE` forces the
CPU's choice.

Served by the Hub as remote code beside modeling_vaner.py and pipeline_vaner.py.
"""

from __future__ import annotations

import logging
import os

import torch

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Loading and precision

DTYPES = ("auto", "bfloat16", "float16", "float32")


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (AVX512-BF16 or AMX): from the CPU flags on Linux,
    else a quick probe (a bf16 matmul faster than fp32 means the hardware does it)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return _bf16_probe()


def _bf16_probe(size: int = 512, repeats: int = 3) -> bool:
    import time

    timings = {}
    for dtype in (torch.float32, torch.bfloat16):
        a = torch.randn(size, size, dtype=dtype)
        a @ a
        started = time.perf_counter()
        for _ in range(repeats):
            a @ a
        timings[dtype] = time.perf_counter() - started
    return timings[torch.bfloat16] < timings[torch.float32]


# Names the precision "auto" picks on a CPU ("bfloat16" or "float32") instead of the CPU's flags: runs the
# tests, or a comparison, as on the other kind of CPU.
AUTO_CPU_DTYPE_VARIABLE = "VANER_AUTO_CPU_DTYPE"


def choose_dtype(dtype: str, device: torch.device | str) -> torch.dtype:
    """"bfloat16", "float16", "float32", or "auto": bf16 on CUDA devices (fp16 where bf16 is missing) and on CPUs
    with native bf16 (AVX512-BF16 or AMX; elsewhere bf16 matmuls are about 100x slower), else fp32, unless
    `$VANER_AUTO_CPU_DTYPE` names the CPU's choice. The one precision policy of the pipeline and the command-line
    tools; what "auto" chose, and why, is logged."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, not {dtype!r}")
    if dtype != "auto":
        return getattr(torch, dtype)
    device = torch.device(device)
    if device.type == "cuda":
        chosen, reason = (torch.bfloat16, "a CUDA GPU with bf16") if torch.cuda.is_bf16_supported() else (
            torch.float16, "a CUDA GPU without bf16")
    elif device.type == "cpu":
        forced = os.environ.get(AUTO_CPU_DTYPE_VARIABLE, "").strip()
        if forced:
            if forced not in ("bfloat16", "float32"):
                raise ValueError(f"{AUTO_CPU_DTYPE_VARIABLE}={forced!r}: name bfloat16 or float32")
            chosen, reason = getattr(torch, forced), f"${AUTO_CPU_DTYPE_VARIABLE}"
        elif cpu_supports_bf16():
            chosen, reason = torch.bfloat16, "this CPU has native bf16 (AVX512-BF16 or AMX)"
        else:
            chosen, reason = torch.float32, "this CPU has no native bf16 (AVX512-BF16 or AMX)"
    else:
        chosen, reason = torch.float32, f"device {device.type}"
    logger.info("precision auto: %s (%s)", str(chosen).removeprefix("torch."), reason)
    return chosen





def to_precision(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """Cast a model's floating weights to `dtype` as `from_pretrained(dtype=...)` loads them: the rotary
    embedding's inverse frequencies stay float32. A plain `model.to(bf16)` rounds them too, which moves every
    position's angle, so the same folder gave other bf16 results through the CLI than through the pipeline."""
    kept = {name: buffer for name, buffer in model.named_buffers() if name.endswith("inv_freq")}
    model.to(dtype=dtype)
    for name, buffer in kept.items():
        owner, _, attribute = name.rpartition(".")
        model.get_submodule(owner)._buffers[attribute] = buffer  # .to(dtype=) left its device as it was
    return model
