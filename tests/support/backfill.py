"""Backfill test helpers: a run in this process on the debug drafter, and small site fixtures."""
from __future__ import annotations

import json
from pathlib import Path

from models.debug import DebugDrafter
from service.backfill.engines import LocalEngine
from service.backfill.runner import BackfillOptions, run
from service.crawl import BlockingCrawler, Crawler
from service.fetch import Fetcher
from service.settings import Settings
from tests.support.drafters import CountingDrafter
from tests.support.api import png
from tests.support.servers import local_resolver


def settings(**overrides) -> Settings:
    return Settings(_env_file=None, model="debug", **overrides)


def backfill(source, out: Path, *, drafter=None, allow=(), **options):
    """Run a backfill here; returns (summary, rows, the counting drafter)."""
    cfg = settings(fetch_allow=list(allow))
    drafter = drafter or CountingDrafter(DebugDrafter())
    crawler = BlockingCrawler(Crawler(Fetcher(allow=cfg.fetch_allow, resolver=local_resolver, timeout_s=5),
                                      min_interval_s=0.0))
    try:
        summary = run(BackfillOptions(source=str(source), out=out, progress="off", **options), cfg,
                      lambda: LocalEngine(cfg, drafter=drafter, crawler=crawler), crawler=crawler)
    finally:
        crawler.close()
    return summary, read_rows(out), drafter


def read_rows(out: Path) -> list[dict]:
    if out.suffix == ".csv":
        import csv

        with out.open(newline="") as fh:
            return list(csv.DictReader(fh))
    return [json.loads(line) for line in out.read_text().splitlines() if line]


def write_images(folder: Path, names_colours: dict[str, str | tuple]) -> None:
    for name, colour in names_colours.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png(colour))


def distinct_images(folder: Path, n: int) -> list[Path]:
    """``n`` images with different pixels (so different content hashes)."""
    paths = []
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        path = folder / f"img-{i:04d}.png"
        path.write_bytes(png(((i * 37) % 256, (i * 91) % 256, (i * 53) % 256), size=(20 + i % 7, 12 + i // 7 % 9)))
        paths.append(path)
    return paths
