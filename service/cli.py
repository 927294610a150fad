"""The `alttext` command: describe images, list backends, serve the API, manage API keys.

Other installed parts add commands through the ``alttext.commands`` entry point group
(``alttext eval`` comes from the evaluation extra), so this module never imports them. Those and
the heavier subcommands (``alttext audit``) are imported only when they run, so ``alttext
describe`` does not pay for them."""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Annotated, Optional

import typer

from service.page import PageContext, Role
from service.settings import get_settings

app = typer.Typer(help="Alt text for images: a vision model drafts, page context and WCAG rules finish.",
                  no_args_is_help=True, add_completion=False)
_debug = {"on": False}


@app.callback()
def main(debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False) -> None:
    _debug["on"] = debug


def model_failure(exc: Exception, debug: bool = False) -> typer.Exit:
    """A model that cannot be loaded or a model server that fails: one line and exit status 1
    (the whole traceback only with --debug)."""
    if debug or _debug["on"]:
        raise exc
    typer.echo(f"error {getattr(exc, 'code', 'model_unavailable')}: {exc}", err=True)
    return typer.Exit(1)


@app.command()
def describe(
    images: Annotated[list[Path], typer.Argument(help="Image files.", show_default=False)],
    caption: Annotated[Optional[str], typer.Option(help="Caption shown with the image(s).")] = None,
    caption_visible: Annotated[bool, typer.Option(
        "--caption-visible/--caption-hidden",
        help="Is the caption shown beside the image? Shown: the alt complements it; hidden: the alt carries it.",
    )] = True,
    context: Annotated[Optional[str], typer.Option(help="Surrounding text or page title.")] = None,
    role: Annotated[str, typer.Option(help="informative, decorative, functional, complex or text.")] = "informative",
    link_href: Annotated[Optional[str], typer.Option(help="Where the image links to (functional images).")] = None,
    link_text: Annotated[Optional[str], typer.Option(help="Visible text in the same link, beside the image.")] = None,
    action: Annotated[Optional[str], typer.Option(help="The button or link's purpose, e.g. 'Search'.")] = None,
    lang: Annotated[str, typer.Option(help="Language of the page (BCP 47).")] = "en",
    existing_alt: Annotated[Optional[str], typer.Option(help="Alt text the image has now (kept if good).")] = None,
    max_chars: Annotated[Optional[int], typer.Option(help="Length budget (default 125).")] = None,
    model: Annotated[Optional[str], typer.Option(help="Override ALTTEXT_MODEL for this run.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per image (JSON Lines).")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    """Print alt text for each IMAGE. Exits 1 if any image could not be read or the model cannot be had."""
    from models.errors import ModelError
    from models.imageio import ImageError, load_image
    from models.registry import load_drafter
    from service.pipeline import describe_batch

    settings = get_settings()
    if model:
        settings = settings.model_copy(update={"model": model})
    try:
        page = PageContext(caption=caption, caption_visible=caption_visible, context=context, role=_role(role),
                           link_href=link_href, link_text=link_text, action=action, lang=lang,
                           existing_alt=existing_alt, max_chars=max_chars)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc

    loaded, failed = [], False
    for path in images:
        try:
            loaded.append((path, load_image(path, **settings.image_limits())))
        except ImageError as exc:
            failed = True
            _report_error(path, exc, as_json)
    if loaded:
        try:
            drafter = load_drafter(settings.model, **settings.drafter_options())
        except ModelError as exc:
            raise model_failure(exc, debug) from None
        for start in range(0, len(loaded), settings.batch_size):
            chunk = loaded[start:start + settings.batch_size]
            try:
                results = describe_batch(drafter, [li for _, li in chunk], [page] * len(chunk), settings)
            except ModelError as exc:
                raise model_failure(exc, debug) from None
            for (path, _), result in zip(chunk, results):
                if as_json:
                    typer.echo(json.dumps({"image": str(path), "result": result.model_dump(mode="json")}))
                else:
                    flag = "  [needs review]" if result.needs_review else ""
                    typer.echo(f"{path}: {result.alt}{flag}")
    raise typer.Exit(1 if failed else 0)


def _role(value: str) -> Role:
    allowed = Role.__args__
    if value not in allowed:
        raise typer.BadParameter(f"role must be one of {', '.join(allowed)}")
    return value  # type: ignore[return-value]


def _report_error(path: Path, exc, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"image": str(path), "error": {"code": exc.code, "reason": exc.reason,
                                                               "message": str(exc)}}))
    else:
        typer.echo(f"{path}: error {exc.code} ({exc.reason}): {exc}", err=True)


@app.command()
def models() -> None:
    """List drafter backends and whether they are installed."""
    from models.registry import backend_name, describe_backends

    current = backend_name(get_settings().model)
    for info in describe_backends():
        mark = "installed" if info.installed else "NOT INSTALLED"
        active = "  <- ALTTEXT_MODEL" if info.name.partition(":")[0] == current else ""
        typer.echo(f"{info.name:13s} {mark}{active}\n    {info.detail}")


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Bind address (default 127.0.0.1). Beyond loopback, "
                                                     "API keys are required.")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default 8000).")] = None,
) -> None:
    """Start the HTTP API (uvicorn)."""
    import uvicorn

    from service.app import create_app
    from service.observability import configure_logging, logging_config

    from pydantic import ValidationError

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    try:
        settings = get_settings().model_copy(update=overrides)
    except ValidationError as exc:  # a setting that cannot work: say which, and do not start
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            typer.echo(f"alttext: bad setting{' ' + where if where else ''}: {err['msg']}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_format)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_config=logging_config(settings.log_format), access_log=False)


keys_app = typer.Typer(help="API keys: create, list, revoke. Keys are stored hashed; a new key is shown once.",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _key_store():
    from service.auth import KeyStore
    from service.db import connect

    return KeyStore(connect(get_settings().db_url()))


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who the key is for, e.g. 'wordpress-blog'.")],
    rate_limit: Annotated[Optional[int], typer.Option(
        help="Per-minute budget (default ALTTEXT_RATE_LIMIT_PER_MINUTE; 0 = none).")] = None,
) -> None:
    """Create a key and print it once (it cannot be shown again)."""
    key, secret = _key_store().create(name, rate_limit)
    typer.echo(f"{key.id}  {name}", err=True)
    typer.echo(secret)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (ids and names; the keys themselves are not stored)."""
    from datetime import datetime, timezone

    for key in _key_store().list():
        created = datetime.fromtimestamp(key.created_at, timezone.utc).strftime("%Y-%m-%d %H:%M")
        state = "revoked" if key.revoked_at else "active"
        limit = "default" if key.rate_limit is None else str(key.rate_limit)
        typer.echo(f"{key.id}  {state:7s}  rate={limit:7s}  {created}  {key.name}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (key_...), from `alttext keys list`.")],
) -> None:
    """Revoke a key; requests with it get 401 from then on."""
    if not _key_store().revoke(key_id):
        typer.echo(f"no active key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


@app.command()
def backfill(
    source: Annotated[str, typer.Argument(help="A folder of images or HTML pages, a CSV/JSONL manifest, a WordPress "
                                               "export (.xml), an HTML file, a sitemap, a .txt list of URLs, or a "
                                               "page URL.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="Report: .jsonl or .csv. The checkpoint sits beside it.",
                                      show_default=False)],
    source_type: Annotated[str, typer.Option(help="auto, images, manifest, wxr, html, sitemap or urls.")] = "auto",
    uploads: Annotated[Optional[Path], typer.Option(help="Local copy of wp-content/uploads for a WordPress "
                                                         "export (else files are fetched by URL).")] = None,
    overwrite_poor: Annotated[bool, typer.Option(help="Also write 'propose' decisions (poor human alt) in the "
                                                      "WP-CLI script and --apply.")] = False,
    apply: Annotated[Optional[Path], typer.Option("--apply", help="HTML sources: write copies of the pages with "
                                                                   "alt set under this folder, plus an undo record.")] = None,
    in_place: Annotated[bool, typer.Option(help="HTML sources: change the pages in place (undo record kept).")] = False,
    restart: Annotated[bool, typer.Option(help="Forget the checkpoint and start over.")] = False,
    batch_size: Annotated[int, typer.Option(min=1, max=1024, help="Items per batch (and per checkpoint).")] = 16,
    server: Annotated[Optional[str], typer.Option(help="Send the work to a running `alttext serve` at this URL "
                                                       "instead of loading a model here.")] = None,
    api_key: Annotated[Optional[str], typer.Option(envvar="ALTTEXT_API_KEY", help="API key for --server.")] = None,
    engine: Annotated[str, typer.Option(help="local or ray (a pool of Ray actors; RAY_ADDRESS picks a cluster).")] = "local",
    ray_concurrency: Annotated[int, typer.Option(min=1, help="Ray: model workers (actors, one model load each per run).")] = 2,
    ray_batch_size: Annotated[int, typer.Option(min=1, help="Ray: items per call to a worker.")] = 16,
    ray_chunk: Annotated[int, typer.Option(min=1, help="Ray: items per checkpointed chunk (the "
                                                       "workers and their models last the whole run).")] = 2048,
    depth: Annotated[int, typer.Option(min=0, help="Page URL: follow same-origin links this deep.")] = 0,
    max_pages: Annotated[int, typer.Option(min=1, help="Most pages to read from a crawl, sitemap or URL list.")] = 1000,
    host_interval: Annotated[float, typer.Option(min=0.0, help="Seconds between requests to one host.")] = 1.0,
    progress: Annotated[str, typer.Option(help="auto (a bar on a terminal, else plain lines), bar, lines, off.")] = "auto",
    model: Annotated[Optional[str], typer.Option(help="Override ALTTEXT_MODEL for this run.")] = None,
) -> None:
    """Describe every image of SOURCE into OUT, resumably: run the same command again after any
    interruption and it carries on. One decision per item: keep, fill, propose, decorative, review, error."""
    from service.backfill.runner import BackfillOptions, CheckpointMismatch, run
    from service.backfill.sources import SourceError
    from service.crawl import blocking_crawler

    settings = get_settings()
    if model:
        settings = settings.model_copy(update={"model": model})
    if engine not in ("local", "ray"):
        raise typer.BadParameter("--engine is local or ray")
    if server and engine != "local":
        raise typer.BadParameter("--server and --engine ray do not go together")
    options = BackfillOptions(source=source, out=out, kind=source_type, batch_size=batch_size,
                              overwrite_poor=overwrite_poor, restart=restart,
                              uploads=str(uploads) if uploads else None, apply_dir=apply, in_place=in_place,
                              depth=depth, max_pages=max_pages, progress=progress, engine_name=engine)
    crawler = blocking_crawler(settings, min_interval_s=host_interval)

    def make_engine():
        if server:
            from service.backfill.engines import ServerEngine

            return ServerEngine(server, api_key, settings=settings)
        if engine == "ray":
            from service.backfill.ray_engine import RayEngine

            return RayEngine(settings, concurrency=ray_concurrency, batch_size=ray_batch_size)
        from service.backfill.engines import LocalEngine

        return LocalEngine(settings, crawler=crawler)

    if engine == "ray":
        options.batch_size = ray_chunk  # Ray gets whole chunks; each chunk is one checkpoint, spread over the workers
    try:
        summary = run(options, settings, make_engine, crawler=crawler)
    except (SourceError, CheckpointMismatch, ValueError, RuntimeError) as exc:
        typer.echo(f"backfill: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        crawler.close()
    typer.echo(summary.text(), err=True)


@app.command("backfill-undo")
def backfill_undo(
    record: Annotated[Path, typer.Argument(help="The undo record an --apply run wrote (OUT.undo.json).",
                                           show_default=False)],
) -> None:
    """Put every page an --apply run wrote back exactly as it was (byte for byte)."""
    from service.backfill.writers import undo

    restored, problems = undo(record)
    for problem in problems:
        typer.echo(problem, err=True)
    typer.echo(f"restored {restored} files", err=True)
    if problems:
        raise typer.Exit(1)


# Commands that extras provide: command -> extra that installs it.
EXTRA_COMMANDS = {"eval": "eval"}
_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def lazy_command(target: typer.Typer, name: str, load: Callable[[], Callable], help_text: str,
                 extra: str | None = None) -> None:
    """Mount ``name`` on ``target`` without importing it: all its arguments (``--help`` too) go to
    the real command, which ``load`` imports only when ``name`` runs. With ``extra``, a command that
    cannot be imported says how to install that extra instead."""

    @target.command(name, help=help_text, context_settings=_PASS_THROUGH)
    def command(ctx: typer.Context) -> None:
        try:
            real = load()
        except ImportError as exc:
            if extra is None:
                raise
            _not_installed(name, extra, str(exc))()
        single = typer.Typer(add_completion=False)
        single.command(name)(real)
        typer.main.get_command(single).main(list(ctx.args), prog_name=ctx.command_path)


def _attribute(path: str) -> Callable[[], Callable]:
    module, attr = path.split(":")
    return lambda: getattr(import_module(module), attr)


lazy_command(app, "audit", _attribute("service.audit.cli:audit_command"),
             "Audit pages for WCAG 1.1.1: missing, wrong and poor alt text, with the reason and a proposed fix.")


def _not_installed(name: str, extra: str, why: str):
    def command() -> None:
        typer.echo(f"`alttext {name}` is not installed here ({why}). Install the {extra!r} extra: "
                   f"pip install -e '.[{extra}]' (scripts/setup.sh --dev does).", err=True)
        raise typer.Exit(1)

    command.__doc__ = f"Not installed: needs the {extra!r} extra (pip install -e '.[{extra}]')."
    return command


def mount_extra_commands(target: typer.Typer, found: list[EntryPoint] | None = None) -> None:
    """Add each ``alttext.commands`` entry point as a command, imported only when it runs; one
    that cannot be imported, or a known extra that is not installed at all, says how to install it."""
    found = list(entry_points(group="alttext.commands")) if found is None else found
    mounted = set()
    for ep in found:
        extra = EXTRA_COMMANDS.get(ep.name, ep.name)
        lazy_command(target, ep.name, ep.load, f"From the {extra!r} extra (alttext {ep.name} --help).", extra)
        mounted.add(ep.name)
    for name, extra in EXTRA_COMMANDS.items():
        if name not in mounted:
            target.command(name, context_settings=_PASS_THROUGH)(
                _not_installed(name, extra, "no entry point registered"))


mount_extra_commands(app)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
