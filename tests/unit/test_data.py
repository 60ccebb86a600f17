"""Prompt sources and the prompt schedule."""
import numpy as np
import pytest

from adascope_ray.config import DataConfig
from adascope_ray.data import PromptError, PromptSchedule, load_prompts


def test_schedule_visits_every_prompt_once_per_epoch_and_is_deterministic():
    prompts = [f"p{i}" for i in range(6)]
    s = PromptSchedule(prompts, per_iteration=2, group_size=3, seed=7)
    epoch = [p for it in range(3) for p in s.prompts_for(it)]
    assert sorted(epoch) == prompts                       # 3 iterations x 2 = one epoch
    assert epoch == [p for it in range(3) for p in PromptSchedule(prompts, 2, 3, 7).prompts_for(it)]
    batches = s.batches(0, shards=2, policy_version=4)
    assert [b.prompts for b in batches] == [[s.prompts_for(0)[0]] * 3, [s.prompts_for(0)[1]] * 3]
    assert all(b.group_ids.tolist() == [0, 0, 0] and b.policy_version == 4 for b in batches)
    assert batches[0].seed != batches[1].seed


def test_prompt_files(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    txt = tmp_path / "p.txt"
    txt.write_text("a cat\n\n  a dog  \n", encoding="utf-8")
    assert load_prompts(DataConfig(prompts_file=str(txt))) == ["a cat", "a dog"]
    pq.write_table(pa.table({"prompt": ["x", "y"]}), tmp_path / "p.parquet")
    assert load_prompts(DataConfig(prompts_file=str(tmp_path / "p.parquet"))) == ["x", "y"]
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(PromptError, match="no prompts"):
        load_prompts(DataConfig(prompts_file=str(tmp_path / "empty.txt")))
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(PromptError, match="UTF-8"):
        load_prompts(DataConfig(prompts_file=str(tmp_path / "bad.txt")))
    pq.write_table(pa.table({"text": ["x"]}), tmp_path / "t.parquet")
    with pytest.raises(PromptError, match="'prompt' column"):
        load_prompts(DataConfig(prompts_file=str(tmp_path / "t.parquet")))


def test_over_long_prompts_are_found_and_reported(tmp_path, capsys):
    from adascope_ray.cli import preflight
    from adascope_ray.config import config_from_dict
    from adascope_ray.data import over_long
    from adascope_ray.models.tokenizer import build_clip_tokenizer

    tok = build_clip_tokenizer(tmp_path / "tok")
    # "cat" is one token; with BOS and EOS, 75 words make 77 tokens (fits), 76 make 78
    fits, too_long = " ".join(["cat"] * 75), " ".join(["cat"] * 76)
    assert over_long(["a dog", fits, too_long, too_long], tok) == [2, 3]
    cfg = config_from_dict({"data": {"prompts": ["a dog", too_long], "prompts_per_iteration": 1}})
    assert preflight(cfg) == ["a dog", too_long]  # kept (the encoder truncates), with a warning
    assert "1 of 2 prompts exceed the text encoder's token limit" in capsys.readouterr().err
