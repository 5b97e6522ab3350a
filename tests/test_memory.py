"""glibc keeps freed memory for the next step: a training loop's large tensors stop costing page faults."""

import subprocess
import sys

import pytest

from ganbench.memory import _glibc

# A step-like loop whose tensors (52 MB, over glibc's largest mmap threshold) are allocated, used through autograd
# and freed every iteration: the minor page faults an iteration, over iterations 20-39 (the heap has mostly
# settled by then: the first few grow it while its free blocks find their sizes; a late growth by one 52 MB
# block, 12,800 faults, averages 640 a step over the 20, far under the bound below).
FAULTS_PER_STEP = """
import resource, sys, torch
from ganbench.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory() is True and keep_freed_memory() is True  # a second call is harmless
w = torch.ones(128, 1, 1, requires_grad=True)
for i in range(40):
    if i == 20:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.full((100, 128, 32, 32), 0.5)
    torch.nn.functional.leaky_relu(x * w + 1, 0.2).tanh().sum().backward()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


def faults_per_step(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", FAULTS_PER_STEP, mode], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(_glibc() is None, reason="the C library is not glibc")
def test_a_step_reuses_freed_memory_instead_of_faulting_it_in_again():
    # Counted in faults, not bytes: where transparent huge pages are always on, one fault maps 2 MB, not 4 KB.
    unmapped_and_faulted_anew = faults_per_step("default")  # glibc's default: ~100,000 here (400 MB of blocks a step)
    kept = faults_per_step("keep")  # reused from the heap: 0 here, a late growth of the heap at most
    assert unmapped_and_faulted_anew > 10 and kept < unmapped_and_faulted_anew / 20
