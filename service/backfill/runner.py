"""The backfill run: source -> batches -> engine -> decisions -> checkpoint -> output, resumable."""
from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from service.backfill import decisions, writers
from service.backfill.items import Item
from service.backfill.store import Checkpoint, CheckpointMismatch
from service.settings import Settings

__all__ = ["BackfillOptions", "Summary", "run", "CheckpointMismatch", "checkpoint_path"]


@dataclass
class BackfillOptions:
    source: str
    out: Path
    kind: str = "auto"
    batch_size: int = 16
    overwrite_poor: bool = False
    restart: bool = False
    uploads: str | None = None
    apply_dir: Path | None = None
    in_place: bool = False
    depth: int = 0
    max_pages: int = 1000
    progress: str = "auto"  # auto, bar, lines, off
    progress_every_s: float = 10.0
    engine_name: str = "local"


@dataclass
class Summary:
    items: int = 0
    new: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    drafted: int = 0
    seconds: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)
    apply: dict | None = None

    @property
    def rate(self) -> float:
        return self.new / self.seconds if self.seconds > 0 else 0.0

    def text(self) -> str:
        lines = [f"{self.items} items ({self.new} this run) in {self.seconds:.1f} s: {self.rate:.1f} images/s; "
                 f"{self.drafted} drafted by the model"]
        lines.append("decisions: " + ", ".join(f"{d} {self.decisions.get(d, 0)}" for d in decisions.DECISIONS))
        if self.errors:
            lines.append("errors: " + ", ".join(f"{c} {n}" for c, n in sorted(self.errors.items())))
        lines += [f"{name}: {path}" for name, path in self.outputs.items()]
        if self.apply:
            lines.append(f"apply: {self.apply['attributes']} attributes on {self.apply['pages']} pages"
                         + (f", {self.apply['skipped']} skipped (page changed)" if self.apply["skipped"] else "")
                         + (f"; undo: alttext backfill-undo {self.apply['undo']}" if self.apply.get("undo") else ""))
        return "\n".join(lines)


def checkpoint_path(out: Path) -> Path:
    return out.with_name(out.name + ".checkpoint.sqlite")


def _remove(path: Path) -> None:
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if p.exists():
            p.unlink()


class Progress:
    """tqdm on a terminal; otherwise a plain line every ``every_s`` seconds (logs, CI)."""

    def __init__(self, mode: str, total: int | None, initial: int, every_s: float, stream=None) -> None:
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "lines"
        self.mode, self.total, self.count, self.every_s = mode, total, initial, every_s
        self.start, self.last, self.first = time.monotonic(), time.monotonic(), initial
        self.bar = None
        if mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="img", file=self.stream, dynamic_ncols=True)

    def update(self, n: int, counts: Counter) -> None:
        self.count += n
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix({k: v for k, v in counts.items()}, refresh=False)
        elif self.mode == "lines" and time.monotonic() - self.last >= self.every_s:
            self.last = time.monotonic()
            rate = (self.count - self.first) / max(self.last - self.start, 1e-9)
            eta = ""
            if self.total and rate > 0:
                eta = f", about {(self.total - self.count) / rate:.0f} s left"
            of = f"/{self.total}" if self.total else ""
            print(f"backfill: {self.count}{of} items, {rate:.1f} images/s{eta}; "
                  + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _count(source: str, kind: str) -> int | None:
    """A cheap total for the ETA where one exists without parsing the whole source."""
    from service.backfill.sources import IMAGE_EXTS, _walk, detect

    kind = detect(source) if kind == "auto" else kind
    if kind == "images":
        return sum(1 for p in _walk(Path(source)) if p.suffix.lower() in IMAGE_EXTS)
    if kind == "manifest" and source.lower().endswith((".jsonl", ".ndjson")):
        with open(source, "rb") as fh:
            return sum(1 for line in fh if line.strip())
    return None


def run(options: BackfillOptions, settings: Settings, engine_factory: Callable[[], object],
        crawler=None, stream=None) -> Summary:
    from service.backfill.sources import detect, iter_source

    started = time.monotonic()
    fmt = writers.output_format(options.out)
    kind = detect(options.source) if options.kind == "auto" else options.kind
    ckpt_path = checkpoint_path(options.out)
    if options.restart:
        _remove(ckpt_path)
        if options.out.exists():
            options.out.unlink()
    options.out.parent.mkdir(parents=True, exist_ok=True)
    store = Checkpoint(ckpt_path)
    source_id = options.source if "://" in options.source else str(Path(options.source).resolve())
    store.bind({"source": source_id, "kind": kind, "model": settings.model, "format": fmt,
                "max_chars": settings.max_chars, "review_below": settings.review_below,
                "uploads": options.uploads})
    output = writers.OutputFile(options.out, fmt)
    engine = None
    try:
        _reconcile(store, output)
        done = store.done
        total = _count(options.source, kind)
        progress = Progress(options.progress if options.progress != "off" else "none", total, done,
                            options.progress_every_s, stream)
        counts: Counter = Counter(store.counts())
        items = iter_source(options.source, kind, uploads=options.uploads, crawler=crawler, depth=options.depth,
                            max_pages=options.max_pages)
        new = 0
        drafted = 0
        for batch in _batches(_resume(items, store, done), options.batch_size):
            if engine is None:
                engine = engine_factory()
                engine.recall(store)
            rows = _describe(batch, engine, settings)
            store.commit(rows, engine.take_drafts())
            size = output.append(row for _, row in rows)
            store.mark_written(rows[-1][0] + 1, size)
            counts.update(row["decision"] for _, row in rows)
            new += len(rows)
            progress.update(len(rows), counts)
        progress.close()
        drafted = getattr(engine, "drafted", 0) if engine is not None else 0
    finally:
        output.close()
        if engine is not None:
            engine.close()

    summary = Summary(items=store.done, new=new, decisions=store.counts(), errors=store.error_codes(),
                      drafted=drafted, seconds=time.monotonic() - started, outputs={"output": str(options.out)})
    if kind == "wxr":
        script = options.out.with_name(options.out.stem + ".wp-cli.sh")
        n = writers.write_wp_cli((row for _, row in store.rows()), script, overwrite_poor=options.overwrite_poor)
        summary.outputs["wp-cli"] = f"{script} ({n} updates)"
    if options.apply_dir is not None or options.in_place:
        if kind != "html" or "://" in options.source:
            raise ValueError("--apply and --in-place work on local HTML files only.")
        root = Path(options.source)
        dest = root if options.in_place else options.apply_dir
        if not options.in_place and dest.resolve() == (root if root.is_dir() else root.parent).resolve():
            raise ValueError("--apply DIR is the source folder; pass --in-place to change pages in place.")
        undo_path = options.out.with_name(options.out.stem + ".undo.json")
        summary.apply = writers.apply_html((row for _, row in store.rows()), root, dest, undo_path,
                                           overwrite_poor=options.overwrite_poor)
    store.close()
    return summary


def _reconcile(store: Checkpoint, output: writers.OutputFile) -> None:
    """Make the output hold exactly the committed rows, after any crash."""
    rows_written, size = store.written
    actual = output.size()
    if actual < size:  # the output was removed or cut: write it again from the checkpoint
        output.truncate(0)
        rows_written = 0
    elif actual > size:  # a crash after writing, before recording the write: drop the tail
        output.truncate(size)
    pending = [row for _, row in store.rows(rows_written)]
    if pending or actual < size:
        new_size = output.append(pending)
        store.mark_written(store.done, new_size)


def _resume(items: Iterator[Item], store: Checkpoint, done: int) -> Iterator[tuple[int, Item]]:
    for seq, item in enumerate(items):
        if seq < done:
            if store.id_at(seq) != item.id:
                raise CheckpointMismatch(
                    f"Item {seq} is {item.id!r} now but was {store.id_at(seq)!r}: the source changed since the "
                    "checkpoint was made. Pass --restart to start over.")
            continue
        yield seq, item


def _batches(pairs: Iterator[tuple[int, Item]], size: int) -> Iterator[list[tuple[int, Item]]]:
    while True:
        batch = list(islice(pairs, size))
        if not batch:
            return
        yield batch


def _describe(batch: list[tuple[int, Item]], engine, settings: Settings) -> list[tuple[int, dict]]:
    from service.backfill.engines import Failure

    rows: dict[int, dict] = {}
    todo: list[tuple[int, Item, object]] = []
    for seq, item in batch:
        if item.error is not None:
            rows[seq] = decisions.error_row(item, *item.error)
            continue
        try:
            page = item.context()
        except ValueError as exc:
            rows[seq] = decisions.error_row(item, "invalid_request", str(exc).splitlines()[0])
            continue
        if decisions.passes(page, settings.max_chars):
            rows[seq] = decisions.keep_row(item)  # good human alt: nothing to draft
            continue
        todo.append((seq, item, page))
    if todo:
        outcomes = engine.run([item for _, item, _ in todo])
        for (seq, item, page), outcome in zip(todo, outcomes):
            if isinstance(outcome, Failure):
                rows[seq] = decisions.error_row(item, outcome.code, outcome.message)
            else:
                rows[seq] = decisions.result_row(item, page, outcome)
    return [(seq, rows[seq]) for seq, _ in batch]
