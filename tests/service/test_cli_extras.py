"""`alttext` mounts commands that extras provide (the evaluation harness's `eval`) by entry point,
and says how to install a missing one instead of failing with an import error."""
from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import typer
from typer.testing import CliRunner

from service.cli import app, mount_extra_commands

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def fresh_app(found) -> typer.Typer:
    target = typer.Typer()

    @target.command()
    def describe() -> None:  # a second command, so typer keeps subcommands
        pass

    mount_extra_commands(target, found)
    return target


def test_eval_is_mounted_from_its_entry_point():
    out = runner.invoke(app, ["eval", "--help"])
    assert out.exit_code == 0, "alttext eval is missing: run scripts/setup.sh --dev (it registers entry points)"
    assert "--dataset" in out.output
    mounted = fresh_app([EntryPoint("eval", "evaluation.cli:eval_command", "alttext.commands")])
    assert "--caption-hidden" in runner.invoke(mounted, ["eval", "--help"]).output


def test_a_missing_extra_says_how_to_install_it():
    broken = fresh_app([EntryPoint("eval", "no_such_harness.cli:eval_command", "alttext.commands")])
    out = runner.invoke(broken, ["eval", "--dataset", "coco", "--limit", "5"])
    assert out.exit_code == 1
    assert "pip install -e '.[eval]'" in out.output and "no_such_harness" in out.output
    unregistered = fresh_app([])
    out = runner.invoke(unregistered, ["eval"])
    assert out.exit_code == 1 and "'eval' extra" in out.output


def test_without_the_evaluation_extra_the_service_cli_still_works():
    # As if pycocoevalcap (the evaluation extra) were not installed: find_spec() says None, import fails.
    code = ("import sys\nsys.modules['pycocoevalcap'] = None\n"
            "from service.cli import app\nsys.argv = ['alttext'] + sys.argv[1:]\napp()")
    ran = lambda *args: subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True,
                                       text=True, timeout=120)
    evaluation = ran("eval", "--dataset", "coco")
    assert evaluation.returncode == 1
    assert "pip install -e '.[eval]'" in evaluation.stderr and "pycocoevalcap" in evaluation.stderr
    described = ran("describe", "--help")
    assert described.returncode == 0 and "--caption" in described.stdout


def test_describe_does_not_import_the_other_subcommands(tmp_path):
    from tests.support.api import png

    (tmp_path / "red.png").write_bytes(png("red"))
    code = ("import sys\nfrom service.cli import app\n"
            "try:\n    app(['describe', sys.argv[1], '--json'])\nexcept SystemExit as exc:\n    assert not exc.code, exc\n"
            "print(sorted({m.split('.')[0] + '.' + m.split('.')[1] for m in sys.modules\n"
            "              if m.startswith(('service.audit', 'service.backfill', 'evaluation.'))}))")
    ran = subprocess.run([sys.executable, "-c", code, str(tmp_path / "red.png")], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "ALTTEXT_MODEL": "debug"})
    assert ran.returncode == 0, ran.stderr
    assert '"alt": "A 24 by 16 image, mostly red."' in ran.stdout  # the debug backend's real answer
    assert ran.stdout.strip().splitlines()[-1] == "[]"  # audit, backfill and eval stayed unimported
    audit = runner.invoke(app, ["audit", "--format", "xml", "page.html"])  # still there, imported on use
    assert audit.exit_code == 2 and "--format must be one of" in audit.output
