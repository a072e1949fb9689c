"""The container entrypoint, run on the host against a temporary /job."""

from __future__ import annotations

import json

from sandbox.container import runner


def job(tmp_path, code, description=None):  # type: ignore[no-untyped-def]
    (tmp_path / "main.py").write_text(code)
    if description is not None:
        (tmp_path / "job.json").write_text(json.dumps(description))
    return tmp_path


def test_success(tmp_path, capsys):
    assert runner.main(job(tmp_path, "print('ok')\n")) == 0
    assert capsys.readouterr().out == "ok\n"


def test_exit_status_passes_through(tmp_path):
    assert runner.main(job(tmp_path, "raise SystemExit(7)\n")) == 7
    assert runner.main(job(tmp_path, "import sys\nsys.exit()\n")) == 0


def test_exception_is_status_one_with_traceback(tmp_path, capsys):
    assert runner.main(job(tmp_path, "def f():\n    1/0\nf()\n")) == 1
    assert "ZeroDivisionError" in capsys.readouterr().err


def test_string_exit_is_status_one(tmp_path, capsys):
    assert runner.main(job(tmp_path, "raise SystemExit('bad input')\n")) == 1
    assert "bad input" in capsys.readouterr().err


def test_job_description_picks_the_entry(tmp_path, capsys):
    (tmp_path / "other.py").write_text("print('other')\n")
    assert (
        runner.main(job(tmp_path, "print('main')\n", {"kind": "python", "entry": "other.py"})) == 0
    )
    assert capsys.readouterr().out == "other\n"


def test_bad_descriptions_are_65(tmp_path):
    assert runner.main(job(tmp_path, "", {"kind": "cobol"})) == runner.EXIT_BAD_JOB
    assert runner.main(job(tmp_path, "", {"entry": "../../etc/passwd"})) == runner.EXIT_BAD_JOB
    (tmp_path / "job.json").write_text("[1, 2]")
    assert runner.main(tmp_path) == runner.EXIT_BAD_JOB
    (tmp_path / "job.json").write_text("{not json")
    assert runner.main(tmp_path) == runner.EXIT_BAD_JOB


def test_job_modules_import_from_the_job_dir(tmp_path, capsys):
    (tmp_path / "helpers.py").write_text("VALUE = 41\n")
    assert runner.main(job(tmp_path, "import helpers\nprint(helpers.VALUE + 1)\n")) == 0
    assert capsys.readouterr().out == "42\n"
