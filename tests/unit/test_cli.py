"""Bad input stops the CLI with exit code 2 before anything starts."""
import sys
from pathlib import Path

from adascope_ray.cli import main

TINY = str(Path(__file__).parents[2] / "configs" / "tiny.yaml")


def test_bad_field_exits_2_naming_it(tmp_path, capsys):
    assert main(["train", TINY, "learner.lrr=1", f"run.output_dir={tmp_path}"]) == 2
    assert "learner.lrr" in capsys.readouterr().err
    assert not (tmp_path / "tiny").exists()
    assert "ray" not in sys.modules or not __import__("ray").is_initialized()


def test_missing_prompt_file_and_existing_run(tmp_path, capsys):
    assert main(["train", TINY, f"data.prompts_file={tmp_path / 'p.txt'}", f"run.output_dir={tmp_path}"]) == 2
    assert "p.txt" in capsys.readouterr().err
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "metrics.jsonl").write_text("{}\n")
    assert main(["train", TINY, f"run.output_dir={tmp_path}"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (tmp_path / "tiny" / "metrics.jsonl").read_text() == "{}\n"  # nothing overwritten


def test_validate_command(capsys):
    assert main(["validate", TINY]) == 0
