"""The allocator policy the transformers backend applies on CPU: freed activation memory is
reused instead of being page-faulted and zeroed again. Each check runs in a fresh process,
since the policy is process-wide and cannot be undone."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from models import allocator

# A model thread (not the main one, as in the service) allocating and freeing 48 MB and 8 MB
# buffers as torch does per layer (BLIP-base's attention matrix at batch 8 is 64 MB); the minor
# page faults of the later rounds are what the policy saves. A thread's heaps hold at most 64 MB,
# so glibc maps larger blocks afresh whatever the policy (see models/allocator.py).
CYCLES = """
import json, resource, sys, threading
import torch
from models.allocator import keep_freed_memory

applied = keep_freed_memory() if sys.argv[1] == "keep" else None
result = {}

def layer():
    a = torch.empty(12 << 20).fill_(1.0)  # 48 MB, past glibc's largest mmap threshold (32 MB)
    b = torch.empty(2 << 20).fill_(1.0)   # 8 MB
    del a, b

def layers():
    for _ in range(20):  # warm: the heap settles on the few places it hands these blocks out at
        layer()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        layer()
    result["faults"] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

thread = threading.Thread(target=layers)
thread.start()
thread.join()
print(json.dumps(result | {"applied": applied}))
"""


def faults(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CYCLES, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_buffers_are_reused_instead_of_faulted_in_again():
    default, kept = faults("default"), faults("keep")
    assert kept["applied"] is True
    # 10 rounds of 56 MB is about 140k pages: by default each round faults its buffers in again
    assert default["faults"] > 100_000, default
    assert kept["faults"] < default["faults"] / 20, (kept, default)


def test_applied_once_and_false_without_glibc(monkeypatch):
    monkeypatch.setattr(allocator, "_applied", None)
    calls = []
    monkeypatch.setattr(allocator, "_mallopt_all", lambda: calls.append(1) or False)
    assert allocator.keep_freed_memory() is False and allocator.keep_freed_memory() is False
    assert calls == [1]


# Memory kept by the policy goes back to the OS when a trim is due, and not before.
TRIM = """
import json, threading
import torch
from models.allocator import keep_freed_memory, trim_if_due

def rss_mb():
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS:")).split()[1]) // 1024

keep_freed_memory()
def layers():
    for size in (40, 30, 20, 10):  # MB, freed in turn: holes of several sizes, as batches leave
        kept = [torch.empty(size << 18).fill_(1.0) for _ in range(4)]
        del kept
thread = threading.Thread(target=layers)
thread.start()
thread.join()
kept = rss_mb()
not_yet = trim_if_due(every_s=3600)
after_wait = rss_mb()
trimmed = trim_if_due(every_s=0)
print(json.dumps({"kept": kept, "not_yet": not_yet, "after_wait": after_wait, "trimmed": trimmed,
                  "after_trim": rss_mb()}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_kept_memory_is_given_back_once_a_trim_is_due():
    out = subprocess.run([sys.executable, "-c", TRIM], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["not_yet"] is False and result["trimmed"] is True, result
    assert result["after_wait"] >= result["kept"] - 10, result  # kept while no trim is due
    assert result["after_trim"] < result["kept"] - 100, result  # 160 MB freed: most goes back


def test_no_trim_without_the_policy(monkeypatch):
    monkeypatch.setattr(allocator, "_applied", None)
    assert allocator.trim_if_due(every_s=0) is False
