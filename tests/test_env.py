"""attention_course.env: seeding, deterministic mode and the cache folder every notebook shares."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from attention_course.env import cache_root, seed_everything


def test_seed_everything_repeats_and_turns_on_deterministic_mode():
    seed_everything(3)
    first = (torch.rand(3), np.random.rand(3))
    seed_everything(3)
    second = (torch.rand(3), np.random.rand(3))
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()


def test_seed_everything_does_not_import_torch_compile():
    """Deterministic mode without torch.use_deterministic_algorithms' import of the compiler's
    configuration, which cost every notebook and every graded submission 1.5 s at start."""
    code = ("import sys, torch\nfrom attention_course.env import seed_everything\nseed_everything(0)\n"
            "assert torch.are_deterministic_algorithms_enabled()\n"
            "print('torch._inductor' in sys.modules, 'torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"], out


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ATTENTION_COURSE_CACHE", str(tmp_path))
    assert cache_root() == tmp_path
    monkeypatch.delenv("ATTENTION_COURSE_CACHE")
    assert cache_root() == Path.home() / ".cache" / "attention_course"
