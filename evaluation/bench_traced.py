"""`alttext serve` with tracemalloc, for the soak (``python -m evaluation.bench_soak --trace-memory``):

    python -m evaluation.bench_traced OUT.json serve --port PORT

The server starts untraced (imports and model loading at full speed). The first SNAPSHOT_SIGNAL
(SIGUSR1; the soak sends it when the server is warm) starts tracemalloc; the second takes a
snapshot, which then holds exactly the Python allocations made after warm-up that are still
alive, and writes the sites holding the most, by source line and by call stack, to OUT.json.
Only Python allocations are traced (torch's and ONNX Runtime's own allocators are not): RSS
growth without matching Python growth points at native memory (arenas, library caches)."""
from __future__ import annotations

import json
import os
import signal
import sys
import tracemalloc
from pathlib import Path

SNAPSHOT_SIGNAL = signal.SIGUSR1
FRAMES = 6
TOP = 25


def report(snapshot: tracemalloc.Snapshot) -> dict:
    """What ``snapshot`` holds, most first (sizes in KiB)."""
    snapshot = snapshot.filter_traces((tracemalloc.Filter(False, tracemalloc.__file__),))
    by_line = snapshot.statistics("lineno")
    by_stack = snapshot.statistics("traceback")
    return {
        "python_kb_alive_from_after_warm": round(sum(s.size for s in by_line) / 1024, 1),
        "blocks": sum(s.count for s in by_line),
        "top_lines": [{"where": str(s.traceback[0]), "size_kb": round(s.size / 1024, 1), "count": s.count}
                      for s in by_line[:TOP]],
        "top_stacks": [{"size_kb": round(s.size / 1024, 1), "count": s.count, "stack": s.traceback.format()}
                       for s in by_stack[:5]],
    }


def main() -> None:
    out = Path(sys.argv[1])

    def on_signal(_signum, _frame) -> None:
        if not tracemalloc.is_tracing():
            tracemalloc.start(FRAMES)
            return
        snapshot = tracemalloc.take_snapshot()
        tracemalloc.stop()
        partial = out.with_suffix(".partial")
        partial.write_text(json.dumps(report(snapshot), indent=2) + "\n")
        os.replace(partial, out)

    signal.signal(SNAPSHOT_SIGNAL, on_signal)
    from service.cli import app

    sys.argv = ["alttext", *sys.argv[2:]]
    app()


if __name__ == "__main__":
    main()
