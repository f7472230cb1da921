"""Every expected failure of the command line is one clear line with no traceback, and each exit
code means one thing: 2 bad usage (an option's value, a folder that cannot be written), 1 a run
that failed (a file error, a divergence, a backend), 130 Ctrl-C (saying what was kept and how to
resume); a bug keeps its traceback."""

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
    (["coordcheck", "--n-seeds", "0", "--steps", "0"],
     "argument --n-seeds: expected an integer >= 1, got '0'"),
    (["coordcheck", "--steps", "-5"], "argument --steps: expected an integer >= 1, got '-5'"),
    (["toy-analytic", "--n-seeds", "0"], "argument --n-seeds: expected an integer >= 1, got '0'"),
    (["toy-analytic", "--steps", "2.5"], "argument --steps: expected an integer >= 1, got '2.5'"),
    (["toy-heatmap", "--per-decade", "0"], "argument --per-decade: expected an integer >= 1, "
                                           "got '0'"),
    (["coordcheck", "--lr", "nan"], "argument --lr: expected a finite number > 0, got 'nan'"),
    (["pretrain", "--widths", "64", "64"], "argument --widths: expected distinct values, got "
                                           "64 64 (64 twice)"),
    (["finetune", "--eval-seeds", "-1"], "argument --eval-seeds: expected an integer >= 0, got "
                                         "'-1'"),
    (["finetune", "--lr-ratios", "1", "16", "x"], "argument --lr-ratios: expected a finite "
                                                  "number > 0, got 'x'"),
    (["width-sweep", "--widths", "64.5"], "argument --widths: expected an integer >= 1, got "
                                          "'64.5'"),
    (["bench", "--workloads", "mlp,gpt"], "argument --workloads: expected one of mlp, block, "
                                          "grid, got 'gpt'"),
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


@pytest.mark.parametrize("command", ["width-sweep", "coordcheck", "pretrain", "bench"])
@pytest.mark.parametrize("widths", [["64,64"], ["64", "64"], ["64,", "64"]])
def test_duplicate_widths_are_one_line_in_either_syntax(command, widths, capsys, tmp_path):
    """--widths 64,64 (or 64 64) would give two identical rows: refused with the values shown,
    before anything runs, whichever list syntax was typed."""
    code, err = run_cli([command, "--widths", *widths, "--out", str(tmp_path)], capsys)
    assert code == 2 and error_lines(err) == [
        f"tinylora {command}: error: argument --widths: expected distinct values, got 64 64 "
        f"(64 twice)"]


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


def test_a_file_error_while_running_is_one_line_and_exit_1(monkeypatch, capsys):
    """An OSError (disk full, a folder removed under the run) is a failed run: one line, exit 1
    (not 2, which is bad usage)."""
    fake_command(monkeypatch, raises(PermissionError(13, "Permission denied", "out/x.json")))
    code, err = run_cli(["demo"], capsys)
    assert code == 1 and err == ("tinylora demo: error: [Errno 13] Permission denied: "
                                 "'out/x.json'\n")


def test_a_file_error_inside_out_names_out(monkeypatch, capsys, tmp_path):
    """A write that fails inside --out (the disk went read-only under the run) names --out:
    the OS error alone shows a path, not the option that chose it."""
    path = str(tmp_path / "parts" / "width64.json")
    fake_command(monkeypatch, raises(OSError(30, "Read-only file system", path)))
    code, err = run_cli(["demo", "--out", str(tmp_path)], capsys)
    assert code == 1 and err == (f"tinylora demo: error: cannot write into --out "
                                 f"'{tmp_path}': [Errno 30] Read-only file system: '{path}'\n")


def test_a_failed_run_exits_1_and_bad_input_2(monkeypatch, capsys):
    """A RuntimeError (a pretraining run that diverged, a backend that cannot run) is a failed
    run, exit 1; a ValueError (an option's value, a folder made by another configuration) is bad
    usage, exit 2."""
    fake_command(monkeypatch, raises(RuntimeError("pretraining d_model=64 diverged at step 3")))
    assert run_cli(["demo"], capsys) == (1, "tinylora demo: error: pretraining d_model=64 "
                                            "diverged at step 3\n")
    fake_command(monkeypatch, raises(ValueError("--widths: expected an integer >= 1, got 'x'")))
    assert run_cli(["demo"], capsys)[0] == 2


def test_an_out_that_cannot_be_written_is_refused_by_trying(monkeypatch, capsys, tmp_path):
    """--out is tested by making a file there, not by reading permission bits (which do not
    bind root, and say nothing of a read-only disk): a folder where no file can be made is
    refused as bad usage, naming --out and the folder."""
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    code, err = run_cli(["toy-analytic", "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and error_lines(err) == [
        f"tinylora toy-analytic: error: argument --out: expected a writable folder, got "
        f"'{tmp_path / 'out'}': '{tmp_path}' is not writable (Read-only file system)"]


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
