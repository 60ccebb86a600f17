"""Bad input stops the CLI with exit code 2 before anything starts."""
import subprocess
import sys
from pathlib import Path

from adascope_ray.cli import main

TINY = str(Path(__file__).parents[2] / "configs" / "tiny.yaml")


def test_bad_field_exits_2_naming_it_before_ray_starts(tmp_path):
    r = subprocess.run([sys.executable, "-m", "adascope_ray.cli", "train", TINY, "learner.lrr=1",
                        f"run.output_dir={tmp_path}"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "learner.lrr" in r.stderr
    assert "Ray" not in r.stdout + r.stderr  # no cluster was started or joined
    assert not (tmp_path / "tiny").exists()


def test_missing_prompt_file_and_existing_run(tmp_path, capsys):
    assert main(["train", TINY, f"data.prompts_file={tmp_path / 'p.txt'}", "data.world_train_captions=0",
                 f"run.output_dir={tmp_path}"]) == 2
    assert "p.txt" in capsys.readouterr().err
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "metrics.jsonl").write_text("{}\n")
    assert main(["train", TINY, f"run.output_dir={tmp_path}"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (tmp_path / "tiny" / "metrics.jsonl").read_text() == "{}\n"  # nothing overwritten


def test_validate_command(capsys):
    assert main(["validate", TINY]) == 0


def test_unreachable_cluster_fails_fast_naming_the_address(tmp_path, capsys):
    import socket

    from adascope_ray.cli import main

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = str(Path(__file__).parents[2] / "configs" / "tiny.yaml")
    argv = ["train", cfg, "--address", f"127.0.0.1:{port}", f"run.output_dir={tmp_path}", "cluster.connect_timeout_s=2"]
    assert main(argv) == 2
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in capsys.readouterr().err
    assert main(argv) == 2  # nothing was left behind that blocks a second try
    assert "already holds a run" not in capsys.readouterr().err


def test_real_model_configs_name_the_paths_to_fill_in(tmp_path, capsys):
    root = Path(__file__).parents[2] / "configs"
    for name in ("sd15_pickscore.yaml", "sd15_aesthetic.yaml", "sdxl_hps.yaml", "sd35_pickscore.yaml"):
        assert main(["train", str(root / name), f"run.output_dir={tmp_path}"]) == 2
        assert "data.prompts_file: /path/to/prompts.txt not found" in capsys.readouterr().err
        prompts = tmp_path / "p.txt"
        prompts.write_text("a cat\n")
        assert main(["train", str(root / name), f"run.output_dir={tmp_path}", f"data.prompts_file={prompts}"]) == 2
        assert "model.path: /path/to/stable-diffusion" in capsys.readouterr().err
    assert not any(tmp_path.glob("sd*"))  # nothing was created for runs that could not start


def test_ocr_reward_needs_quoted_text_in_every_prompt(tmp_path, capsys):
    cfg = str(Path(__file__).parents[2] / "configs" / "tiny.yaml")
    argv = ["train", cfg, f"run.output_dir={tmp_path}", "rewards.components=[{name: ocr}]"]
    assert main(argv) == 2
    from adascope_ray.world.splits import split_captions

    first = split_captions("train", 1)[0]  # tiny.yaml trains on the world's train split
    assert f"'ocr' needs quoted text in every prompt; data has '{first}'" in capsys.readouterr().err
    quoted = tmp_path / "signs.txt"
    quoted.write_text('a sign that says "open"\n')
    assert main([*argv, f"data.prompts_file={quoted}", "data.world_train_captions=0",
                 "rewards.components=[{name: ocr, path: /no/such/ocr}]"]) == 2
    assert "OCR program '/no/such/ocr' not found" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["signs.txt"]  # no run folder was made


def test_a_run_name_that_leaves_output_dir_is_refused_and_nothing_is_deleted(tmp_path, capsys, monkeypatch):
    """run.name=.. with run.overwrite=true once removed <output_dir>/.., the user's checkout."""
    work = tmp_path / "checkout"
    (work / "runs").mkdir(parents=True)
    (work / "precious.py").write_text("keep me\n")
    monkeypatch.chdir(work)
    for name in ("..", ".", "../checkout"):
        assert main(["train", TINY, f"run.name={name}", "run.overwrite=true", "run.output_dir=runs"]) == 2
        assert "run.name" in capsys.readouterr().err
    assert (work / "precious.py").read_text() == "keep me\n"


def test_summary_of_a_resumed_run_whose_rows_hold_null(tmp_path, capsys):
    """metrics.jsonl writes NaN as null; a resumed run's summary reads those rows back."""
    from adascope_ray.cli import _summary
    from adascope_ray.config import config_from_dict, dump_config
    from adascope_ray.runio import RunDir

    run = RunDir.create(str(tmp_path), "r", overwrite=False)
    run.write_config(dump_config(config_from_dict({"data": {"prompts": ["a"]}})))
    row = {"window_start": 0.0, "window_length": 2.0, "window_hist": [2, 2, 0], "cost_fwd_equiv": 10}
    rows = [{**row, "iteration": i, "reward_mean": v} for i, v in enumerate([None, 0.5, 0.7, None])]
    for r in rows:
        run.append_metrics(r)
    _summary(run, rows, 1.0)
    out = capsys.readouterr().out
    # first / last are what was logged (NaN); the means are over the finite values: (0.5 + 0.7) / 2
    assert "first nan  last nan  (mean of first 4: 0.6000, last 4: 0.6000)" in out
    assert (run.root / "reward.png").is_file() and (run.root / "window.png").is_file()
    assert "first nan, last nan" in (run.root / "report.html").read_text()  # the report reads the same rows


def test_report_names_a_folder_that_is_not_a_run_or_whose_config_does_not_load(tmp_path, capsys):
    from adascope_ray.cli import main

    assert main(["report", str(tmp_path)]) == 2
    assert "not a run folder (no config.yaml)" in capsys.readouterr().err
    (tmp_path / "config.yaml").write_text("learner: {lrr: 1}\n")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "config.yaml does not load" in err and "learner.lrr" in err
