"""The command line refuses bad input with one `radiobench: error: ...` line and exit code 2, no traceback."""
from __future__ import annotations

from pathlib import Path

import pytest

from radiobench import cli
from radiobench.cli import main

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED_RUN = ROOT / "leaderboard" / "runs" / "first-cpu"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may land in the checkout, whatever a command does


def _refused(capsys, *argv: str) -> str:
    """Run the CLI; assert exit code 2 and no traceback; return stderr."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and "error: " in err
    return err


def _run(out: Path, *extra: str) -> list[str]:
    return ["run", "--generators", "replay", "--dataset", "synthetic", "--metrics", "mean_w1", "--out", str(out), "-q",
            *extra]


@pytest.mark.parametrize("seeds, message", [
    ("0,1,0", "--seeds: 0 given twice in '0,1,0'"), ("-1", "seeds must be >= 0; got -1"),
    ("1,-2", "seeds must be >= 0"), (",", "at least one seed"),
])
def test_bad_seeds_are_refused(capsys, tmp_path, seeds, message):
    assert message in _refused(capsys, *_run(tmp_path / "r", "--seeds", seeds))
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("value, message", [("0", "must be >= 1; got 0"), ("-4", "must be >= 1; got -4"),
                                            ("2.5", "whole number >= 1, not '2.5'")])
def test_bad_batch_size_is_refused(capsys, tmp_path, value, message):
    err = _refused(capsys, *_run(tmp_path / "r", "--batch-size", value))
    assert "--batch-size" in err and message in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("option, message", [
    ("resolution=abc", "integer"), ("resolution=true", "integer"), ("seed=abc", "'seed' must be an integer"),
    ("n_train=2.5", "'n_train' must be an integer"),
])
def test_bad_dataset_option_values_are_refused(capsys, tmp_path, option, message):
    assert message in _refused(capsys, *_run(tmp_path / "r", "--dataset-option", option))


def test_names_given_twice_are_refused(capsys, tmp_path):
    err = _refused(capsys, "run", "--generators", "replay,pixel_floor,replay", "--dataset", "synthetic",
                   "--out", str(tmp_path / "r"))
    assert "--generators: replay given twice" in err
    assert "--metrics: mean_w1 given twice" in _refused(capsys, *_run(tmp_path / "r", "--metrics", "mean_w1,mean_w1"))
    assert not (tmp_path / "r").exists()


def test_data_dir_as_a_dataset_option_is_refused(capsys, tmp_path):
    assert "--data-dir" in _refused(capsys, *_run(tmp_path / "r", "--dataset-option", f"data_dir={tmp_path}"))


def test_unknown_dataset_option_lists_the_known_ones(capsys, tmp_path):
    err = _refused(capsys, "run", "--generators", "replay", "--dataset", "mirabest", "--dataset-option", "foo=1",
                   "--out", str(tmp_path / "r"))
    assert "['foo']" in err and "confidence" in err and "split_seed" in err


def test_run_out_below_a_file_is_refused(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    assert str(tmp_path / "file") in _refused(capsys, *_run(tmp_path / "file" / "run"))


def test_leaderboard_output_onto_a_directory_is_refused(capsys, tmp_path):
    (tmp_path / "d").mkdir()
    assert str(tmp_path / "d") in _refused(capsys, "leaderboard", str(PUBLISHED_RUN), "-o", str(tmp_path / "d"))


def test_publish_onto_a_file_is_refused(capsys, tmp_path):
    (tmp_path / "f").write_text("x")
    assert str(tmp_path / "f") in _refused(capsys, "publish", str(PUBLISHED_RUN), "--to", str(tmp_path / "f"))
    assert (tmp_path / "f").read_text() == "x"


def test_report_of_a_file_is_refused(capsys, tmp_path):
    (tmp_path / "f").write_text("x")
    assert str(tmp_path / "f") in _refused(capsys, "report", str(tmp_path / "f"))


def test_evaluators_import_of_a_missing_archive_is_refused(capsys, tmp_path):
    assert str(tmp_path / "no.tar") in _refused(capsys, "evaluators", "import", str(tmp_path / "no.tar"),
                                               "--cache-dir", str(tmp_path / "cache"))


def test_data_fetch_from_a_folder_without_the_data_is_refused(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    err = _refused(capsys, "data", "fetch", "mirabest", "--data-dir", str(tmp_path / "empty"))
    assert "no MiraBest FITS files" in err


def test_os_errors_on_user_paths_are_clean_but_others_are_not_swallowed(capsys, tmp_path, monkeypatch):
    def fails_on(path):
        def cmd(args):
            raise PermissionError(13, "Permission denied", str(path))
        return cmd

    monkeypatch.setattr(cli, "cmd_report", fails_on(tmp_path / "run" / "report" / "index.html"))
    assert f"{tmp_path / 'run' / 'report' / 'index.html'}: Permission denied" in _refused(
        capsys, "report", str(tmp_path / "run"))
    monkeypatch.setattr(cli, "cmd_report", fails_on("/somewhere/else/internal.json"))  # a bug, not user input
    with pytest.raises(PermissionError):
        main(["report", str(tmp_path / "run")])


@pytest.mark.parametrize("argv, message", [
    (["evaluators", "train", "--dataset", "synthetic", "--dataset-option", "data_dir=x"], "--data-dir, not as"),
    (["evaluators", "train", "--dataset", "synthetic", "--seed", "-1"], "--seed: must be >= 0; got -1"),
    (["evaluators", "list", "--cache-dir", "a-file"], "a-file is a file, not a folder"),
])
def test_evaluator_commands_refuse_bad_values(capsys, argv, message):
    Path("a-file").write_text("not a cache")
    assert message in _refused(capsys, *argv)
