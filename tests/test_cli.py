import subprocess
import sys
from pathlib import Path

from linkserver.cli import main

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
