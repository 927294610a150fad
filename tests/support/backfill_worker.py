"""A backfill in a child process, for the crash tests: the debug drafter, slowed down, logging
every image it drafts (``python backfill_worker.py SOURCE OUT LOG TAG``)."""
from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from models.debug import DebugDrafter  # noqa: E402
from service.backfill.engines import LocalEngine  # noqa: E402
from service.backfill.runner import BackfillOptions, run  # noqa: E402
from service.settings import Settings  # noqa: E402


class LoggingDrafter(DebugDrafter):
    def __init__(self, log: str, tag: str, delay_s: float) -> None:
        super().__init__()
        self.log, self.tag, self.delay_s = log, tag, delay_s

    def draft(self, images, hints=None):
        time.sleep(self.delay_s * len(images))
        with open(self.log, "a") as fh:
            for image in images:
                fh.write(f"{self.tag} {hashlib.sha256(image.tobytes()).hexdigest()}\n")
            fh.flush()
            os.fsync(fh.fileno())
        return super().draft(images, hints)


def main() -> None:
    source, out, log, tag = sys.argv[1:5]
    delay = float(os.environ.get("WORKER_DELAY_S", "0.01"))
    settings = Settings(_env_file=None, model="debug")
    drafter = LoggingDrafter(log, tag, delay)
    summary = run(BackfillOptions(source=source, out=Path(out), batch_size=8, progress="lines",
                                  progress_every_s=0.0), settings, lambda: LocalEngine(settings, drafter=drafter))
    print(summary.text(), file=sys.stderr)


if __name__ == "__main__":
    main()
