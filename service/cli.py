"""The `alttext` command: describe images, list backends, serve the API."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from service.result import PageContext, Role
from service.settings import get_settings

app = typer.Typer(help="Alt text for images: a vision model drafts, page context and WCAG rules finish.",
                  no_args_is_help=True, add_completion=False)


@app.command()
def describe(
    images: Annotated[list[Path], typer.Argument(help="Image files.", show_default=False)],
    caption: Annotated[Optional[str], typer.Option(help="Caption shown with the image(s).")] = None,
    context: Annotated[Optional[str], typer.Option(help="Surrounding text or page title.")] = None,
    role: Annotated[str, typer.Option(help="informative, decorative, functional, complex or text.")] = "informative",
    existing_alt: Annotated[Optional[str], typer.Option(help="Alt text the image has now (kept if good).")] = None,
    max_chars: Annotated[Optional[int], typer.Option(help="Length budget (default 125).")] = None,
    model: Annotated[Optional[str], typer.Option(help="Override ALTTEXT_MODEL for this run.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per image (JSON Lines).")] = False,
) -> None:
    """Print alt text for each IMAGE. Exits 1 if any image could not be read."""
    from models.imageio import ImageError, load_image
    from models.registry import load_drafter
    from service.pipeline import describe_batch

    settings = get_settings()
    if model:
        settings = settings.model_copy(update={"model": model})
    try:
        page = PageContext(caption=caption, context=context, role=_role(role), existing_alt=existing_alt,
                           max_chars=max_chars)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc

    loaded, failed = [], False
    for path in images:
        try:
            loaded.append((path, load_image(path, max_bytes=settings.max_image_bytes,
                                             max_pixels=settings.max_image_pixels)))
        except ImageError as exc:
            failed = True
            _report_error(path, exc, as_json)
    if loaded:
        drafter = load_drafter(settings.model, **settings.drafter_options())
        for start in range(0, len(loaded), settings.batch_size):
            chunk = loaded[start:start + settings.batch_size]
            results = describe_batch(drafter, [li for _, li in chunk], [page] * len(chunk), settings)
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
    from models.registry import describe_backends

    current = get_settings().model
    for info in describe_backends():
        mark = "installed" if info.installed else "NOT INSTALLED"
        active = "  <- ALTTEXT_MODEL" if info.name == current or (info.name == "transformers" and current != "offline") else ""
        typer.echo(f"{info.name:13s} {mark}{active}\n    {info.detail}")


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default 8000).")] = None,
) -> None:
    """Start the HTTP API (uvicorn)."""
    import uvicorn

    settings = get_settings()
    uvicorn.run("service.app:create_app", factory=True, host=host or settings.host, port=port or settings.port,
                log_level="info")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
