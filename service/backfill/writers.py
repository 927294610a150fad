"""Outputs: the JSON Lines / CSV report, a WP-CLI script for WordPress, and HTML pages with
alt attributes set (with an undo record that restores every file byte for byte)."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shlex
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from service.backfill import html as pages
from service.backfill.decisions import COLUMNS

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
CSV_COLUMNS = COLUMNS + ("selector",)


def output_format(out: Path) -> str:
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ValueError(f"--out must end in .jsonl or .csv, not {out.suffix or '(no extension)'!r}.")
    return fmt


def encode_row(row: dict, fmt: str) -> bytes:
    if fmt == "jsonl":
        return (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
    buf = io.StringIO()
    values = []
    for col in CSV_COLUMNS:
        value = row.get(col) if col != "selector" else (row.get("location") or {}).get("selector")
        if isinstance(value, list):
            value = "; ".join(value)
        values.append("" if value is None else value)
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue().encode("utf-8")


def csv_header() -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(CSV_COLUMNS)
    return buf.getvalue().encode("utf-8")


class OutputFile:
    """Appends rows and reports the durable length (flushed and fsynced)."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path, self.fmt = path, fmt
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(path, "ab")

    def size(self) -> int:
        self.fh.flush()
        return os.fstat(self.fh.fileno()).st_size

    def truncate(self, size: int) -> None:
        self.fh.flush()
        self.fh.truncate(size)
        self.fh.seek(size)

    def append(self, rows: Iterable[dict]) -> int:
        if self.size() == 0 and self.fmt == "csv":
            self.fh.write(csv_header())
        for row in rows:
            self.fh.write(encode_row(row, self.fmt))
        self.fh.flush()
        os.fsync(self.fh.fileno())
        return self.size()

    def close(self) -> None:
        self.fh.close()


# ----------------------------------------------------------------------------- WordPress


def applies(row: dict, overwrite_poor: bool) -> bool:
    return row["decision"] == "fill" or (overwrite_poor and row["decision"] == "propose")


def write_wp_cli(rows: Iterable[dict], path: Path, *, overwrite_poor: bool) -> int:
    """A shell script of ``wp post meta update ID _wp_attachment_image_alt '...'`` lines for the
    fill decisions (and propose ones with ``overwrite_poor``). Every value is shell-quoted."""
    count = 0
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("#!/bin/sh\n# Written by `alttext backfill`: sets alt text on WordPress attachments.\n"
                 "# Review it, then run it where `wp` works (the WordPress root).\nset -eu\n")
        for row in rows:
            post = str(row.get("wp_post_id") or "")
            if not applies(row, overwrite_poor) or not re.fullmatch(r"\d+", post) or not row.get("new_alt"):
                continue
            alt = row["new_alt"].replace("\r", " ").replace("\n", " ")
            fh.write(f"wp post meta update {post} _wp_attachment_image_alt {shlex.quote(alt)}\n")
            count += 1
    path.chmod(0o755)
    return count


# ----------------------------------------------------------------------------- HTML apply / undo


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def group_by_page(rows: Iterable[dict]) -> Iterator[tuple[str, list[dict]]]:
    """Rows of the same page come together (sources walk pages one at a time)."""
    page, group = None, []
    for row in rows:
        if row.get("page") != page:
            if page is not None:
                yield page, group
            page, group = row.get("page"), []
        group.append(row)
    if page is not None:
        yield page, group


def edit_page(body: bytes, rows: list[dict], overwrite_poor: bool) -> tuple[bytes, int, int]:
    """(new bytes, attributes set, edits skipped because the tag changed since the run)."""
    text = pages.decode(body)
    edits = []
    skipped = 0
    for row in rows:
        loc = row.get("location") or {}
        wanted = applies(row, overwrite_poor) or (row["decision"] == "decorative" and row.get("existing_alt") is None)
        if not wanted or row.get("new_alt") is None:
            continue
        span = pages.start_tag_span(text, loc.get("line"), loc.get("column"))
        if span is None or pages.tag_fingerprint(text[span[0]:span[1]]) != loc.get("tag"):
            skipped += 1
            continue
        edits.append((span, pages.set_attribute(text[span[0]:span[1]], loc["attr"], row["new_alt"])))
    for (start, end), raw in sorted(edits, reverse=True):
        text = text[:start] + raw + text[end:]
    return text.encode("utf-8", errors="surrogateescape"), len(edits), skipped


class UndoRecord:
    """Before a file is written, its old bytes (if any) are copied aside; ``undo`` puts every
    file back as it was (or removes it if it did not exist), refusing files changed since."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.backups = path.with_suffix(".files")
        # Later --apply runs add to the record, so one undo goes all the way back.
        self.entries: list[dict] = json.loads(path.read_text())["files"] if path.exists() else []
        self.written = 0

    def write(self, target: Path, data: bytes) -> None:
        self.backups.mkdir(parents=True, exist_ok=True)
        entry = {"path": str(target.resolve()), "existed": target.exists(), "after": _sha(data)}
        if entry["existed"]:
            old = target.read_bytes()
            backup = self.backups / f"{len(self.entries):06d}-{target.name}"
            backup.write_bytes(old)
            entry.update(before=_sha(old), backup=str(backup.resolve()))
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".alttext-tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        self.entries.append(entry)
        self.written += 1
        self.path.write_text(json.dumps({"version": 1, "files": self.entries}, indent=1))


def apply_html(rows: Iterable[dict], root: Path, dest: Path, undo_path: Path, *, overwrite_poor: bool) -> dict:
    """Copies of the pages under ``root`` with alt attributes set, written under ``dest``
    (``dest == root`` is in place). Only pages with a change are written."""
    undo = UndoRecord(undo_path)
    stats = {"pages": 0, "attributes": 0, "skipped": 0}
    for page, group in group_by_page(rows):
        if page is None:
            continue
        source = root / page if root.is_dir() else root
        if not source.is_file():
            continue
        new, count, skipped = edit_page(source.read_bytes(), group, overwrite_poor)
        stats["skipped"] += skipped
        if count:
            undo.write(dest / page if root.is_dir() else dest / source.name, new)
            stats["pages"] += 1
            stats["attributes"] += count
    stats["undo"] = str(undo_path) if undo.written else None
    return stats


def undo(record: Path) -> tuple[int, list[str]]:
    """Restore what an undo record names. (files restored, problems)."""
    entries = json.loads(record.read_text())["files"]
    restored, problems = 0, []
    for entry in reversed(entries):
        target = Path(entry["path"])
        current = target.read_bytes() if target.exists() else None
        if current is None or _sha(current) != entry["after"]:
            problems.append(f"{target} changed since it was written; left alone")
            continue
        if entry["existed"]:
            shutil.copyfile(entry["backup"], target)
        else:
            target.unlink()
        restored += 1
    return restored, problems
