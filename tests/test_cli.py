import subprocess
import sys
from pathlib import Path

import pytest

from linkserver.cli import _command_of, build_parser, main

ROOT = Path(__file__).resolve().parent.parent


def test_check_accepts_the_shipped_files(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["check"]) == 0
    assert main(["check", "contexts", "config"]) == 0


def test_check_prints_every_problem_with_file_line_column(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "templates:\n"
        "  t:\n"
        "    events:\n"
        "      ok: {level: INFO}\n"
        "      broken:\n"
        "        persistant: true\n"
        "        level: LOUD\n"
    )
    assert main(["check", str(bad)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith(f"{bad}:6:9: ") and "persistent" in line for line in out), out
    assert any(line.startswith(f"{bad}:7:16: ") and "LOUD" in line for line in out), out


def test_run_starts_fires_and_stops_cleanly(tmp_path):
    config = tmp_path / "linkserver.yaml"
    config.write_text(
        "server:\n"
        f"  data_dir: {tmp_path / 'data'}\n"
        f"  contexts: [{ROOT / 'contexts'}]\n"
        "controllers:\n"
        "  - name: simulator\n"
        "    class: linkserver.devices.simulator:SimulatorController\n"
        "    options: {devices: 2, interval: 100ms, seed: 1}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "linkserver", "run", "--config", str(config), "--seconds", "1.5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "devices.sim1 connected" in result.stdout
    assert "devices.sim2 measurement" in result.stdout
    assert "root serverStopping" in result.stdout
    assert (tmp_path / "data" / "history.sqlite3").exists()


ONE_COMMAND_LINES = [
    ["fire", "devices.plc7", "measurement", "value=1.5", "--url", "http://h:1", "--token", "t", "--durable"],
    ["-v", "history", "--limit", "5", "--mask", "devices.**", "--unacknowledged"],
    ["--log-format", "json", "tree", "devices", "--depth", "2"],
    ["--log-format=json", "alarms", "list"],
    ["user", "grant", "bob", "devices.**=operator", "--url", "http://h:1"],
    ["status", "--watch", "2"],
    ["shell", "-c", "ls"],
    ["db", "current", "--url", "sqlite:///x"],
]


def shown(args):
    """The parsed namespace, handlers by name (each parser wraps them anew)."""
    return {k: getattr(v, "__name__", v) if callable(v) else v for k, v in vars(args).items()}


@pytest.mark.parametrize("argv", ONE_COMMAND_LINES, ids=lambda argv: " ".join(argv[:3]))
def test_the_parser_of_one_command_reads_it_as_the_whole_parser_does(argv):
    """main() builds only the options of the command it runs (issue #8); the answer is the same."""
    command = _command_of(argv)
    whole = build_parser().parse_args(argv)
    assert command == whole.command
    assert shown(build_parser(command).parse_args(argv)) == shown(whole)


def test_what_the_command_word_cannot_be_told_of_gets_the_whole_parser(capsys):
    assert _command_of(["--log", "json", "fire"]) is None  # an abbreviation: argparse's call
    assert _command_of(["-h"]) is None and _command_of(["--version"]) is None
    assert _command_of([]) is None
    with pytest.raises(SystemExit) as stopped:
        build_parser("fire").parse_args(["fire"])  # its own usage error, not a stub's
    assert stopped.value.code == 2
    assert "the following arguments are required: path, event" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser("firex").parse_args(["firex"])
    assert "invalid choice: 'firex'" in capsys.readouterr().err
