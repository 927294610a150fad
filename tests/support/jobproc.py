"""A real server process on the tiny drafter, for the crash test: python -m tests.support.jobproc DATA PORT."""
from __future__ import annotations

import sys

import uvicorn

from service.app import create_app
from tests.support.api import settings
from tests.support.drafters import ColourDrafter

if __name__ == "__main__":
    data_dir, port = sys.argv[1], int(sys.argv[2])
    app = create_app(settings(data_dir, batch_size=2, cache=False, job_lease_s=1.0), ColourDrafter(delay_s=0.3))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
