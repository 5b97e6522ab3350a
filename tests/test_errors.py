"""The one way every CLI reports what the user must fix."""

import os

import pytest
from hydra.errors import MissingConfigException

from ganbench.errors import EXIT_USAGE, ConfigError, first_line, hydra_message, print_error, run_compact

# What Hydra says for `dataset=nosuch` (str of its MissingConfigException).
MISSING_OPTION = (
    "In 'classifier': Could not find 'dataset/nosuch'\n\nAvailable options in 'dataset':\n\thoda\n\tmnist\n\tsign_digits\n"
    "Config search path:\n\tprovider=hydra, path=pkg://hydra.conf\n\tprovider=main, path=pkg://ganbench.conf"
)


def test_first_line_skips_blank_lines_and_names_an_empty_exception():
    assert first_line(ValueError("\n  bad value  \nsecond")) == "bad value"
    assert first_line(RuntimeError()) == "RuntimeError"
    assert first_line("x" * 300, 10) == "x" * 10


def test_print_error_writes_one_prefixed_line_per_problem(capsys):
    print_error("ganbench.report", ConfigError("a is wrong\nb is wrong"))
    assert capsys.readouterr().err.splitlines() == ["ganbench.report: error: a is wrong", "ganbench.report: error: b is wrong"]


def test_hydra_message_is_one_line_with_the_choices_and_without_the_search_path():
    assert hydra_message(MISSING_OPTION) == (
        "In 'classifier': Could not find 'dataset/nosuch'; Available options in 'dataset': hoda, mnist, sign_digits")
    assert hydra_message("Could not override 'train.epoch'.\nTo append to your config use +train.epoch=3") == (
        "Could not override 'train.epoch'. To append to your config use +train.epoch=3")


def test_run_compact_reports_hydras_errors_in_one_line_with_exit_2(capsys, monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)

    def missing_option() -> None:
        raise MissingConfigException(MISSING_OPTION, "dataset/nosuch")

    with pytest.raises(SystemExit) as info:
        run_compact(missing_option, "prog")
    assert info.value.code == EXIT_USAGE
    assert capsys.readouterr().err.splitlines() == [
        "prog: error: In 'classifier': Could not find 'dataset/nosuch'; Available options in 'dataset': hoda, mnist, sign_digits"]
    assert os.environ["HYDRA_FULL_ERROR"] == "1"  # so hydra.main raises its errors to us instead of printing them


def test_run_compact_returns_the_result_and_passes_other_errors_on():
    assert run_compact(lambda: 7, "prog") == 7

    def broken() -> None:
        raise ValueError("a bug, not bad input")

    with pytest.raises(ValueError):
        run_compact(broken, "prog")
