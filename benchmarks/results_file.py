"""What the benchmarks that store their results in the package share (training_spread.py, ch7_choices.py).

Both merge each finished run into a JSON file under ``attention_course/``, under a lock so that two
processes may run at once, and record the machine the figures come from.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import platform

from attention_course.env import cache_root


def machine() -> dict:
    """The CPU (its model name from ``/proc/cpuinfo`` where there is one), cores, torch's kernel
    capability, and the torch and Python versions, as stored beside the results."""
    import torch

    cpu = platform.processor()
    with contextlib.suppress(OSError):
        names = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return {"cpu": cpu or platform.machine(), "cores": os.cpu_count(),
            "capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "python": platform.python_version()}


@contextlib.contextmanager
def locked(name: str):
    """Exclusive lock ``cache_root()/<name>.lock`` (outside the repository) around reading, merging and
    writing one results file."""
    path = cache_root() / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
