"""Run a Python module under an on-CPU sampling profiler:
`python -m bench.oncpu OUT MODULE [ARG…]`.

Every millisecond of the process's CPU time (SIGPROF, ITIMER_PROF), the Python stack that
the main thread is in is charged with the CPU time spent since the last sample; when the
module ends, the totals go to OUT as collapsed stacks, one `frame;frame;… µs` a line,
outermost first (the flame-graph format).

A sampler reading the stacks from outside at wall-clock intervals (py-spy) counts a process
waiting for a core as working wherever it waits: on a machine whose cores the database and
the broker keep busy, that put a quarter of the indexer's samples in a socket's `write`,
whose system time was under 4% of its CPU. This one is driven by the process's own CPU
clock. A signal's handler runs only between two Python instructions, and signals that arrive
meanwhile make one: time in C (a COPY's encoding, a batch's decoding) is charged, all of it,
to the Python frame that runs next, mostly the one that called it. A coroutine's stack runs
up through the coroutines awaiting it, so each sample shows the step it belongs to.
"""

import collections
import runpy
import signal
import sys
import time
from pathlib import Path
from types import FrameType

SAMPLE_EVERY = 0.001


def _frame_name(frame: FrameType) -> str:
    code = frame.f_code
    return f"{code.co_qualname} ({code.co_filename}:{code.co_firstlineno})"


class OnCpuSampler:
    def __init__(self) -> None:
        # CPU time in µs, by stack.
        self.counts: collections.Counter[tuple[str, ...]] = collections.Counter()
        self._last = time.process_time()
        # Names by code object: naming a frame is most of a sample's cost.
        self._names: dict[object, str] = {}

    def start(self) -> None:
        signal.signal(signal.SIGPROF, self._sample)
        # Interrupted system calls resume, as they would without the profiler.
        signal.siginterrupt(signal.SIGPROF, False)
        signal.setitimer(signal.ITIMER_PROF, SAMPLE_EVERY, SAMPLE_EVERY)

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)

    def _sample(self, _signum: int, frame: FrameType | None) -> None:
        stack = []
        while frame is not None:
            name = self._names.get(frame.f_code)
            if name is None:
                name = self._names[frame.f_code] = _frame_name(frame)
            stack.append(name)
            frame = frame.f_back
        now = time.process_time()
        self.counts[tuple(reversed(stack))] += round((now - self._last) * 1e6)
        self._last = now

    def write(self, path: Path) -> None:
        path.write_text(
            "".join(f"{';'.join(stack)} {count}\n" for stack, count in self.counts.items())
        )


def main() -> None:
    out, module, *args = sys.argv[1:]
    sampler = OnCpuSampler()
    sys.argv = [module, *args]
    sampler.start()
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        sampler.stop()
        sampler.write(Path(out))


if __name__ == "__main__":
    main()
