"""Every expected failure of the command line is one clear line and exit code 2, with no
traceback; Ctrl-C says what was kept and how to resume, exit code 130; a bug keeps its
traceback."""

import os
import signal
import subprocess
import sys
import textwrap
import types

import pytest

from tinylora.run import cli


def run_cli(argv, capsys):
    """main(argv) in this process -> (exit code, stderr)."""
    try:
        code = cli.main(argv)
    except SystemExit as err:  # argparse refuses an option value by exiting
        code = err.code
    return code, capsys.readouterr().err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error" in line]


@pytest.mark.parametrize("argv, message", [
    (["width-sweep", "--steps", "0"], "argument --steps: expected an integer >= 1, got '0'"),
    (["width-sweep", "--n-train", "0"], "argument --n-train: expected an integer >= 1, got '0'"),
    (["coordcheck", "--seeds", "0", "--steps", "0"],
     "argument --seeds: expected an integer >= 1, got '0'"),
    (["coordcheck", "--steps", "-5"], "argument --steps: expected an integer >= 1, got '-5'"),
    (["toy-analytic", "--seeds", "0"], "argument --seeds: expected an integer >= 1, got '0'"),
    (["toy-analytic", "--steps", "2.5"], "argument --steps: expected an integer >= 1, got '2.5'"),
    (["toy-heatmap", "--per-decade", "0"], "argument --per-decade: expected an integer >= 1, "
                                           "got '0'"),
    (["coordcheck", "--lr", "nan"], "argument --lr: expected a finite number > 0, got 'nan'"),
    (["pretrain", "--widths", "64", "64"], "argument --widths: expected distinct values, got "
                                           "64 64 (64 twice)"),
    (["finetune", "--eval-seeds", "-1"], "argument --eval-seeds: expected an integer >= 0, got "
                                         "'-1'"),
    (["finetune", "--inits", "zero_C"], "inits: expected some of ['zero_B', 'zero_A'], got "
                                        "['zero_C']"),
    (["finetune", "--eval-seeds", "1", "2"], "eval_seeds: expected seeds the tuning never saw, "
                                             "got [1] in both"),
    (["finetune", "--tune-seeds", "0"], "tune_seeds, eval_seeds: expected at least 2 of each, "
                                        "got [0] and [2, 3, 4, 5]"),
    (["bench", "--widths", "0"], "argument --widths: expected an integer >= 1, got '0'"),
])
def test_bad_option_values_are_refused_before_anything_runs(argv, message, capsys):
    """0 or negative steps, seeds, n-train; a NaN rate; duplicate widths: one error line naming
    the option, exit 2 (0 is never read as 'use the default')."""
    code, err = run_cli(argv, capsys)
    assert code == 2 and "Traceback" not in err
    assert error_lines(err) == [f"tinylora {argv[0]}: error: {message}"]


@pytest.mark.parametrize("command", ["width-sweep", "coordcheck"])
def test_duplicate_comma_widths_are_one_line(command, capsys, tmp_path):
    """--widths 64,64 would give two identical rows: refused with the value shown."""
    code, err = run_cli([command, "--widths", "64,64", "--out", str(tmp_path)], capsys)
    assert code == 2 and error_lines(err) == [
        f"tinylora {command}: error: --widths: expected distinct values, got '64,64' (64 twice)"]


@pytest.mark.parametrize("where", ["file", "below a file"])
def test_an_out_that_is_a_file_is_one_line(where, capsys, tmp_path):
    """--out naming a file, or a folder below a file, is refused by name before any work."""
    blocker = tmp_path / "results"
    blocker.write_text("a file")
    out = blocker if where == "file" else blocker / "sub"
    code, err = run_cli(["toy-analytic", "--out", str(out)], capsys)
    assert code == 2 and "Traceback" not in err
    assert error_lines(err) == [f"tinylora toy-analytic: error: argument --out: expected a "
                                f"folder, got '{out}'" + (", which is a file" if where == "file"
                                                          else f": '{blocker}' is a file")]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="permissions do not bind root (and need POSIX)")
def test_an_out_that_is_not_writable_is_one_line(capsys, tmp_path):
    """--out inside a read-only folder is refused, naming the folder that is not writable."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, err = run_cli(["toy-analytic", "--out", str(locked / "out")], capsys)
    assert code == 2 and f"'{locked}' is not writable" in err


def fake_command(monkeypatch, main):
    """Make `tinylora demo` run `main` (a stand-in for a command failing in a given way)."""
    module = types.SimpleNamespace(add_arguments=lambda p: p.add_argument("--out"), main=main)
    monkeypatch.setattr(cli, "command_module", lambda name: module)


def raises(err):
    def main(args):
        raise err
    return main


def test_a_file_error_while_running_is_one_line(monkeypatch, capsys):
    """An OSError (disk full, a folder removed under the run) is an expected failure: one line,
    exit 2 (the CLI used to turn only ValueError and RuntimeError into one line)."""
    fake_command(monkeypatch, raises(PermissionError(13, "Permission denied", "out/x.json")))
    code, err = run_cli(["demo"], capsys)
    assert code == 2 and err == ("tinylora demo: error: [Errno 13] Permission denied: "
                                 "'out/x.json'\n")


def test_a_bug_keeps_its_traceback(monkeypatch):
    """NotImplementedError is a RuntimeError but a bug: it propagates (with its traceback)."""
    fake_command(monkeypatch, raises(NotImplementedError("oops")))
    with pytest.raises(NotImplementedError):
        cli.main(["demo"])


def test_ctrl_c_says_what_was_kept_and_exits_130(monkeypatch, capsys, tmp_path):
    """KeyboardInterrupt in a resumable command: one line naming --out and how to resume."""
    fake_command(monkeypatch, raises(KeyboardInterrupt()))
    code, err = run_cli(["demo", "--out", str(tmp_path)], capsys)
    assert code == 130
    assert err == (f"tinylora demo: interrupted; the work it had finished is kept in {tmp_path}/ "
                   f"(and, for the text commands, the base cache); run the same command again "
                   f"to resume from there\n")


SLOW_COMMAND = textwrap.dedent("""
    import sys, time, types
    from tinylora.run import cli
    def main(args):
        print("ready", flush=True)
        time.sleep(60)
    module = types.SimpleNamespace(add_arguments=lambda p: p.add_argument("--out"), main=main)
    cli.command_module = lambda name: module
    sys.exit(cli.main(["width-sweep", "--out", sys.argv[1]]))
""")


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT")
def test_a_real_sigint_exits_130_with_one_line_and_no_traceback(tmp_path):
    """A SIGINT delivered to a running command (as Ctrl-C does): exit code 130, one line."""
    # the child gets SIGINT's default disposition whatever the runner's (a job started in the
    # background of a shell inherits "ignored", and Python then never raises KeyboardInterrupt)
    proc = subprocess.Popen([sys.executable, "-c", SLOW_COMMAND, str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.splitlines() == [f"tinylora width-sweep: interrupted; the work it had finished is "
                                f"kept in {tmp_path}/ (and, for the text commands, the base "
                                f"cache); run the same command again to resume from there"]
