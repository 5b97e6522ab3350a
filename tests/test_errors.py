"""The one way every CLI reports what the user must fix."""

from ganbench.errors import ConfigError, UserError, first_line, print_error


def test_first_line_skips_blank_lines_and_names_an_empty_exception():
    assert first_line(ValueError("\n  bad value  \nsecond")) == "bad value"
    assert first_line(RuntimeError()) == "RuntimeError"
    assert first_line("x" * 300, 10) == "x" * 10


def test_print_error_writes_one_prefixed_line_per_problem(capsys):
    print_error("ganbench.report", ConfigError("a is wrong\nb is wrong"))
    assert capsys.readouterr().err.splitlines() == ["ganbench.report: error: a is wrong", "ganbench.report: error: b is wrong"]
    assert issubclass(ConfigError, UserError)
