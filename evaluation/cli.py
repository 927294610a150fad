"""`alttext eval`: measure drafter + merge configurations against human references.

Mounted into `alttext` through the ``alttext.commands`` entry point (pyproject.toml) when the
evaluation extra is installed (``pip install -e '.[eval]'``); also runs alone:

    python -m evaluation.cli --dataset coco --limit 20 --out runs/eval/coco20
"""
from __future__ import annotations

import shlex
from importlib.util import find_spec
from pathlib import Path
from typing import Annotated

import typer

if find_spec("pycocoevalcap") is None:  # the evaluation extra is not installed
    raise ModuleNotFoundError("the evaluation extra is not installed (pycocoevalcap is missing)",
                              name="pycocoevalcap")


def eval_command(
    dataset: Annotated[str, typer.Option(
        help="A shipped set (concadia, coco; from ALTTEXT_EVAL_DATA or ../shared/data) or a path to a JSON Lines "
             "file (id, image, caption, context, references) or COCO caption annotations (.json).")] = "concadia",
    split: Annotated[str, typer.Option(help="Split of a shipped set.")] = "dev",
    systems: Annotated[list[str] | None, typer.Option(
        "--systems", help="Systems to compare (repeat or comma-separate): caption-only, draft-only, merged, and "
                          "draft-only@MODEL / merged@MODEL for each extra --model. Default: all.")] = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", help="Drafter id as the service takes it: offline, openai:MODEL or a transformers id/local path. Repeat to "
                        "compare models; the first gives draft-only/merged, others draft-only@ID/merged@ID.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N images.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default runs/eval/<set>-<split>-<time>).")] = None,
    image_root: Annotated[Path | None, typer.Option(help="Image folder for COCO-format annotations.")] = None,
    max_chars: Annotated[int | None, typer.Option(help="Merge length budget (default: service setting).")] = None,
    review_below: Annotated[float | None, typer.Option(help="Merge needs_review threshold.")] = None,
    caption_visible: Annotated[bool, typer.Option(
        "--caption-visible/--caption-hidden",
        help="Whether the caption is shown beside the image (the alt complements it) or not (the alt carries "
             "its key facts).")] = True,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Images per drafter batch.")] = None,
    bootstrap: Annotated[int, typer.Option(min=10, help="Bootstrap resamples.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    clip_model: Annotated[str | None, typer.Option(
        help="Local CLIP model folder for CLIPScore/RefCLIPScore (default ALTTEXT_CLIP_MODEL).")] = None,
    cache_dir: Annotated[Path | None, typer.Option(
        help="Draft cache folder (default ALTTEXT_EVAL_CACHE or ~/.cache/alttext).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Recompute every draft.")] = False,
    thumbnails: Annotated[str, typer.Option(
        help="embed (base64 JPEG in report.html), link (relative paths to the images) or none.")] = "embed",
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Compare caption-only, draft-only and merged alt text against human references; write results.json,
    samples.jsonl, report.md and report.html into one folder."""
    from evaluation.runner import EvalConfig, run

    if thumbnails not in ("embed", "link", "none"):
        raise typer.BadParameter("thumbnails must be embed, link or none", param_hint="--thumbnails")
    config = EvalConfig(
        dataset=dataset, split=split, systems=systems, models=model or ["offline"], limit=limit, out=out,
        image_root=image_root, max_chars=max_chars, review_below=review_below, batch_size=batch_size,
        caption_visible=caption_visible,
        resamples=bootstrap, seed=seed, clip_model=clip_model, cache_dir=cache_dir, use_cache=not no_cache,
        thumbnails=thumbnails, progress=progress,  # type: ignore[arg-type]
        command=_command(locals()),
    )
    from models.errors import ModelError

    try:
        results = run(config, log=lambda msg: typer.echo(msg, err=True))
    except ModelError as exc:  # model cannot be loaded, or its server fails: one line, exit 1
        typer.echo(f"error {exc.code}: {exc}", err=True)
        raise typer.Exit(1) from None
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    report = Path(results["out"]) / "report.md"
    typer.echo(report.read_text(encoding="utf-8"))
    typer.echo(f"Results in {results['out']}/ (results.json, samples.jsonl, report.md, report.html)")


def _command(values: dict) -> str:
    """The command line that reproduces this run (options that differ from their defaults)."""
    import inspect

    parts = ["alttext", "eval"]
    for name, param in inspect.signature(eval_command).parameters.items():
        value = values.get(name)
        if name == "progress" or value is None or (value == param.default and name not in ("dataset", "split")):
            continue
        flag = "--" + name.replace("_", "-")
        if name == "caption_visible":
            parts.append("--caption-hidden")  # only reached when it differs from the default
        elif isinstance(value, bool):
            parts.append(flag)
        elif isinstance(value, list):
            for item in value:
                parts += [flag, shlex.quote(str(item))]
        else:
            parts += [flag, shlex.quote(str(value))]
    return " ".join(parts)


def main() -> None:  # pragma: no cover - thin wrapper
    app = typer.Typer(add_completion=False)
    app.command()(eval_command)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
