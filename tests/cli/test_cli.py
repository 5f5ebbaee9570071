"""The command line's error policy: user errors are one line with exit status 1, bugs keep their traceback."""
import subprocess
import sys

import pytest

from se_zoo.cli import CliError, build_parser, main
from se_zoo.cli import models as cli_models
from se_zoo.errors import InputNotFound, InvalidArgument


def _fail_with(monkeypatch, exc: BaseException) -> None:
    def run(args):
        raise exc

    original = cli_models.add_info

    def add_info(parser):
        original(parser)
        parser.set_defaults(run=run)

    monkeypatch.setattr(cli_models, "add_info", add_info)


@pytest.mark.parametrize("exc, message", [
    (CliError("bad --flag"), "bad --flag"),
    (InvalidArgument("lr must be >= 0, got -1"), "lr must be >= 0, got -1"),
    (InputNotFound("data must be a folder"), "data must be a folder"),
    (RuntimeError("Unknown model (nope)"), "Unknown model (nope)"),
    (ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib"),
     "No module named 'matplotlib': pip install 'se-zoo[plot]'"),
])
def test_user_errors_are_one_line(monkeypatch, capsys, exc, message):
    _fail_with(monkeypatch, exc)
    assert main(["info", "x"]) == 1
    err = capsys.readouterr().err
    assert err == f"se-zoo info: error: {message}\n"


@pytest.mark.parametrize("exc", [
    ValueError("a bug"), RuntimeError("CUDA error: an illegal memory access"), OSError("disk"),
    ModuleNotFoundError("No module named 'torchvision'", name="torchvision"), KeyError("k"),
])
def test_other_errors_keep_their_traceback(monkeypatch, exc):
    _fail_with(monkeypatch, exc)
    with pytest.raises(type(exc)):
        main(["info", "x"])


def test_integrity_error_is_one_line(monkeypatch, capsys):
    from se_zoo import IntegrityError

    _fail_with(monkeypatch, IntegrityError("model.safetensors: sha256 mismatch"))
    assert main(["info", "x"]) == 1
    assert capsys.readouterr().err == "se-zoo info: error: model.safetensors: sha256 mismatch\n"


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["train", "--model", "m", "--data", "d", "--model-kwargs", "novalue"])
    assert excinfo.value.code == 2
    assert "expected KEY=VALUE, got 'novalue'" in capsys.readouterr().err


def test_model_kwargs_are_parsed_as_literals():
    args = build_parser().parse_args(["train", "--model", "m", "--data", "d", "--model-kwargs",
                                      "drop_path_rate=0.1", "act=relu", "layers=(1, 1)"])
    assert dict(args.model_kwargs) == {"drop_path_rate": 0.1, "act": "relu", "layers": (1, 1)}


def test_bad_tokens_file_is_one_line(tmp_path, capsys):
    tokens = tmp_path / "tokens"
    tokens.write_text("secret:admin\n")
    assert main(["hub", "serve", "--root", str(tmp_path / "root"), "--tokens-file", str(tokens)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("se-zoo hub: error: tokens file") and "line 1" in err and "secret" not in err


def test_python_m_runs_the_same_cli():
    done = subprocess.run([sys.executable, "-m", "se_zoo.cli", "data", "digits", "/nonexistent/x", "--val-fraction",
                           "2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr == "se-zoo data: error: val_fraction must be in (0, 1), got 2.0\n"


def test_missing_hub_model_is_one_line(hub_server, capsys):
    repo = f"{hub_server.namespace}/missing"
    assert main(["info", f"hf-hub:{repo}"]) == 1
    assert capsys.readouterr().err.startswith(f"se-zoo info: error: no repository {repo} at {hub_server.endpoint}")


@pytest.mark.parametrize("argv, message", [
    (["hub", "fsck", "--root", "/nonexistent/registry"], "is not a registry root"),
    (["hub", "import", "/nonexistent/x.bundle", "--to-root", "/nonexistent/root"], "does not exist"),
    (["hub", "mirror", "--tags", "se_zoo_nothing.*", "--to-root", "/nonexistent/root"], "matches no catalogue tag"),
])
def test_registry_command_errors_are_one_line(capsys, argv, message):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("se-zoo hub: error: ") and message in err and err.count("\n") == 1
