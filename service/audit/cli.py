"""`alttext audit PAGE_OR_URL_OR_DIR...`: find missing, wrong and poor alt text and propose fixes.

Registered in service/cli.py. Exit status: 0 when no finding is at or above ``--fail-on``
(default: none, never fail on findings), 1 when some are, 2 when a page could not be read
or the arguments are wrong.
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Optional
from urllib.parse import urlsplit

import typer

from service.audit.rules import SEVERITIES

FORMATS = ("json", "sarif", "html")


def audit_command(
    targets: Annotated[Optional[list[str]], typer.Argument(
        help="HTML files, folders (searched for *.html, *.htm) and http(s) URLs.", show_default=False)] = None,
    crawl: Annotated[Optional[str], typer.Option(
        help="Crawl this site from the given URL: same origin, robots.txt respected, polite rate.")] = None,
    depth: Annotated[int, typer.Option(min=0, help="Crawl depth (links followed from the start page).")] = 1,
    max_pages: Annotated[int, typer.Option(min=1, help="Most pages to crawl.")] = 50,
    sitemap: Annotated[Optional[list[str]], typer.Option(
        help="A sitemap (or sitemap index) URL whose pages are audited too; repeatable.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json, sarif or html.")] = "json",
    out: Annotated[Optional[Path], typer.Option(help="Write the report here (default: standard output).")] = None,
    fail_on: Annotated[str, typer.Option(
        help="Exit 1 when a finding at or above this severity exists: critical, serious, moderate, minor, "
             "or none.")] = "none",
    proposals: Annotated[bool, typer.Option(
        "--proposals/--no-proposals", help="Propose alt text for each finding with the pipeline.")] = True,
    check_images: Annotated[bool, typer.Option(
        "--check-images", help="Also draft every described image and report alt that disagrees with it.")] = False,
    max_alt_chars: Annotated[int, typer.Option(min=20, help="too-long above this many characters.")] = 250,
    model: Annotated[Optional[str], typer.Option(help="Override ALTTEXT_MODEL for proposals.")] = None,
    rate: Annotated[float, typer.Option(min=0.0, help="Seconds between requests to one host.")] = 1.0,
    progress: Annotated[bool, typer.Option("--progress/--no-progress",
                                           help="Progress bar on standard error (when it is a terminal).")] = True,
) -> None:
    """Audit pages for WCAG 1.1.1: missing, wrong and poor alt text, with the reason and a proposed fix."""
    from service.audit.report import write
    from service.settings import get_settings

    if fmt not in FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}")
    if fail_on != "none" and fail_on not in SEVERITIES:
        raise typer.BadParameter(f"--fail-on must be one of {', '.join(reversed(SEVERITIES))} or none")
    if not targets and not crawl and not sitemap:
        raise typer.BadParameter("give at least one page, folder or URL, or --crawl / --sitemap")
    settings = get_settings()
    if model:
        settings = settings.model_copy(update={"model": model})

    report = asyncio.run(_run(list(targets or []), crawl, depth, max_pages, list(sitemap or []), proposals,
                              check_images, max_alt_chars, settings, rate, progress))
    text = write(report, fmt, Path.cwd())
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    s = report.summary
    typer.echo(f"{s.pages} page(s), {s.images} image(s), {s.findings} finding(s)"
               + "".join(f", {n} {sev}" for sev, n in s.by_severity.items() if n)
               + (f"; {s.pages_failed} page(s) could not be read" if s.pages_failed else ""), err=True)
    for page in report.pages:
        if page.error:
            typer.echo(f"{page.page}: error {page.error['code']}: {page.error['message']}", err=True)
    if fail_on != "none" and report.at_or_above(fail_on):
        raise typer.Exit(1)
    raise typer.Exit(2 if s.pages_failed else 0)


async def _run(targets, crawl, depth, max_pages, sitemaps, proposals, check_images, max_alt_chars, settings,
               rate, progress):
    from tqdm import tqdm

    from service.audit.run import AuditOptions, PageInput, audit_pages, decode_html, file_loader, local_pages
    from service.crawl import Crawler
    from service.fetch import Fetcher, FetchError

    fetcher = Fetcher(allow=settings.fetch_allow, timeout_s=settings.fetch_timeout_s,
                      max_bytes=settings.max_image_bytes, max_redirects=settings.fetch_max_redirects)
    crawler = Crawler(fetcher, min_interval_s=rate)
    bar = tqdm(desc="pages", unit="page", disable=None if progress else True, file=sys.stderr)
    try:
        inputs: list[PageInput] = []
        urls = [t for t in targets if urlsplit(t).scheme in ("http", "https")]
        inputs += local_pages([Path(t) for t in targets if t not in urls])

        async def fetch_page(url: str) -> PageInput:
            try:
                page = await crawler.page(url)
            except FetchError as exc:
                return PageInput(url, error=(exc.code, str(exc)))
            return PageInput(url, html=decode_html(page.body), url=page.final_url)

        for url in urls:
            inputs.append(await fetch_page(url))
            bar.update(1)
        for sm in sitemaps:
            try:
                async for url in crawler.sitemap(sm, max_urls=max_pages):
                    inputs.append(await fetch_page(url))
                    bar.update(1)
            except FetchError as exc:
                inputs.append(PageInput(sm, error=(exc.code, str(exc))))
        if crawl:
            async for item in crawler.crawl(crawl, max_depth=depth, max_pages=max_pages):
                if isinstance(item, FetchError):
                    inputs.append(PageInput(getattr(item, "url", crawl), error=(item.code, str(item))))
                else:
                    inputs.append(PageInput(item.url, html=decode_html(item.body), url=item.final_url))
                bar.update(1)
        bar.reset(total=len(inputs))
        bar.set_description("auditing")

        describer = None
        if proposals or check_images:
            from models.registry import load_drafter
            from service.pipeline import describe_batch

            drafter = await asyncio.to_thread(load_drafter, settings.model, **settings.drafter_options())

            async def describer(pairs):
                return await asyncio.to_thread(describe_batch, drafter, [p[0] for p in pairs],
                                               [p[1] for p in pairs], settings)

        options = AuditOptions(max_alt_chars=max_alt_chars, proposals=proposals, check_images=check_images,
                               image_limits=settings.image_limits())
        return await audit_pages(inputs, options, loader=file_loader(crawler.image, settings.max_image_bytes),
                                 describer=describer, progress=bar.update)
    finally:
        bar.close()
        await crawler.aclose()
