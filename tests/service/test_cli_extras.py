"""`alttext` mounts commands that extras provide (the evaluation harness's `eval`) by entry point,
and says how to install a missing one instead of failing with an import error."""
from __future__ import annotations

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
