"""The command line: `tinylora` and `python -m tinylora` are the same program."""

import subprocess
import sys

from tinylora.run.cli import main


def test_python_dash_m_runs_the_cli():
    """`python -m tinylora --help` lists the commands (the console script calls the same main)."""
    out = subprocess.run([sys.executable, "-m", "tinylora", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "gradcheck" in out and "demo" in out


def test_bad_backend_is_one_clear_line(capsys):
    """A wrong choice is refused by argparse with the valid choices listed, exit code 2."""
    try:
        main(["gradcheck", "--backend", "jax"])
    except SystemExit as err:
        assert err.code == 2
    assert "invalid choice: 'jax'" in capsys.readouterr().err

