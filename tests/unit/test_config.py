"""The config tree: every shipped YAML validates; bad input names the field."""
import re
from pathlib import Path

import pytest

from adascope_ray.config import Config, ConfigError, load_config
from adascope_ray.eval_config import (CheckpointEvalConfig, DiversityConfig, EvalSamplingConfig, PromptSetConfig,
                                      load_eval_config)

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))
EVAL_CONFIGS = sorted((Path(__file__).parents[2] / "configs" / "eval").glob("*.yaml"))  # adascope-ray eval


def test_there_are_configs():
    assert any(p.name == "tiny.yaml" for p in CONFIGS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_validates(path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)


def test_one_config_per_window_strategy():
    strategies = {load_config(p).window.strategy for p in CONFIGS}
    assert strategies == {"full", "fraction", "random_window", "sliding", "adascope"}


def test_every_field_has_a_description():
    def walk(model):
        for name, f in model.model_fields.items():
            assert f.description, f"{model.__name__}.{name} has no description"
            ann = f.annotation
            if isinstance(ann, type) and hasattr(ann, "model_fields"):
                walk(ann)
    walk(Config)
    walk(CheckpointEvalConfig)  # the eval command's tree
    for sub in (PromptSetConfig, EvalSamplingConfig, DiversityConfig):
        walk(sub)


@pytest.mark.parametrize("path", EVAL_CONFIGS, ids=lambda p: p.name)
def test_every_evaluation_config_validates(path):
    assert isinstance(load_eval_config(path), CheckpointEvalConfig)


def test_overrides_are_typed(tmp_path):
    cfg = load_config(CONFIGS[0], ["learner.lr=0.5", "window.strategy=full", "model.lora_targets=[to_q]"])
    assert cfg.learner.lr == 0.5 and cfg.window.strategy == "full" and cfg.model.lora_targets == ["to_q"]


@pytest.mark.parametrize("override,field", [
    ("learner.lrr=1", "learner.lrr"),                    # unknown field
    ("learner.lr=-1", "learner.lr"),                      # out of range
    ("window.strategy=everything", "window.strategy"),    # not a choice
    ("sampling.num_steps=1", "sampling.num_steps"),
    ("data.group_size=1", "data.group_size"),
    ("run.name=..", "run.name"),                          # not a plain folder name
    ("run.name=.", "run.name"),
    ("run.name=a/b", "run.name"),
    ("learner.adam_betas=[5, -1]", "learner.adam_betas"),  # each beta in [0, 1)
    ("learner.adam_betas=[0.9, 1.0]", "learner.adam_betas"),
])
def test_bad_field_is_named(override, field):
    with pytest.raises(ConfigError) as e:
        load_config(CONFIGS[0], [override])
    assert field in str(e.value)


def test_contradictions_are_refused():
    with pytest.raises(ConfigError, match="window.sliding.size"):
        load_config(Path(CONFIGS[0]), ["window.strategy=sliding", "window.sliding.size=99"])
    # a strategy's setting at the old flat place names where it lives now
    with pytest.raises(ConfigError, match="window.tau_s is now window.adascope.tau_s"):
        load_config(Path(CONFIGS[0]), ["window.tau_s=0.8"])
    with pytest.raises(ConfigError, match="num_samplers"):
        load_config(Path(CONFIGS[0]), ["data.prompts_per_iteration=3", "sampler.num_samplers=2"])
    with pytest.raises(ConfigError, match="partial_credit applies to 'scene_check' only"):
        load_config(Path(CONFIGS[0]), ["rewards.components=[{name: color_match, partial_credit: true}]"])
    with pytest.raises(ConfigError, match="aggregate applies to 'scene_check' only"):
        load_config(Path(CONFIGS[0]), ["rewards.components=[{name: color_match, aggregate: product}]"])
    with pytest.raises(ConfigError, match="aggregate=product has none"):
        load_config(Path(CONFIGS[0]), ["learner.algorithm=draft", "rewards.components=[{name: scene_check, aggregate: product}]"])
    # the learner would train float32 weights the samplers run in bf16: every ratio would clip
    with pytest.raises(ConfigError, match="model.dtype=bfloat16 with model.trainable=full"):
        load_config(Path(CONFIGS[0]), ["model.trainable=full", "model.dtype=bfloat16"])
    assert load_config(Path(CONFIGS[0]), ["model.trainable=full", "model.dtype=float32"]).model.trainable == "full"
    assert load_config(Path(CONFIGS[0]), ["model.trainable=lora", "model.dtype=bfloat16"]).model.dtype == "bfloat16"
    with pytest.raises(ConfigError, match="data.world_train_captions=0 trains on the prompts file"):
        load_config(Path(CONFIGS[0]), ["model.path=builtin:shapes", "data.world_train_captions=8", "data.prompts_file=p.txt"])
    with pytest.raises(ConfigError, match="eval.prompts: give evaluation prompts"):
        load_config(Path(CONFIGS[0]), ["model.path=builtin:tiny", "eval.every=5", "eval.prompts=[]"])
    with pytest.raises(ConfigError, match="builtin:shapes is trained at 32 px, got 64"):
        load_config(Path(CONFIGS[0]), ["model.path=builtin:shapes", "model.resolution=64"])
    # the sampler's shared prefix needs a shared start
    with pytest.raises(ConfigError, match="window.placement=sampler .* set sampling.initial_noise=per_group"):
        load_config(Path(CONFIGS[0]), ["window.placement=sampler"])
    assert load_config(Path(CONFIGS[0]), ["window.placement=sampler", "sampling.initial_noise=per_group"]).window.placement == "sampler"
    with pytest.raises(ConfigError, match="window.strategy=credit reads the reward trace"):
        load_config(Path(CONFIGS[0]), ["window.strategy=credit"])
    assert load_config(Path(CONFIGS[0]), ["window.strategy=credit", "window.reward_trace.enabled=true"]).window.settings.size == 5
    with pytest.raises(ConfigError, match="learner.algorithm=sqdf needs whole trajectories"):
        load_config(Path(CONFIGS[0]), ["window.placement=sampler", "sampling.initial_noise=per_group", "learner.algorithm=sqdf"])
    # a learner group over NCCL moves GPU tensors: every rank needs a GPU
    with pytest.raises(ConfigError, match="learner.group.backend=nccl needs learner.num_gpus >= 1"):
        load_config(Path(CONFIGS[0]), ["learner.group.num_ranks=2", "learner.group.backend=nccl"])
    with pytest.raises(ConfigError, match="learner.off_policy.is_cap"):
        load_config(Path(CONFIGS[0]), ["learner.off_policy.is_cap=0.5"])
    full = ["model.trainable=full", "learner.group.num_ranks=2", "learner.group.sharding=fsdp"]
    tiny = next(Path(c) for c in CONFIGS if Path(c).name == "tiny.yaml")
    assert load_config(tiny, full).learner.group.sharding == "fsdp"
    for bad, named in ((["model.trainable=lora"], "model.trainable=full (got lora)"),
                       (["learner.group.num_ranks=1"], "num_ranks >= 2 (got 1)"),
                       (["learner.algorithm=draft"], "learner.algorithm=ppo (got draft)"),
                       (["publish.method=collective"], "publish.method=object_store (got collective)")):
        with pytest.raises(ConfigError, match=re.escape(named)):
            load_config(tiny, full + bad)


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("run: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(bad)
    with pytest.raises(ConfigError, match="form"):
        load_config(CONFIGS[0], ["no_equals_sign"])


def test_base_file_is_merged_under(tmp_path):
    (tmp_path / "a.yaml").write_text("data: {prompts: [x, y], group_size: 3}\nlearner: {lr: 0.1, inner_epochs: 2}\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\nlearner: {lr: 0.2}\n")
    cfg = load_config(tmp_path / "b.yaml")
    assert (cfg.learner.lr, cfg.learner.inner_epochs, cfg.data.group_size) == (0.2, 2, 3)
    (tmp_path / "c.yaml").write_text("base: c.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "c.yaml")


def test_deploy_rewards_yaml_args_are_a_rewards_section():
    import importlib

    import yaml

    from adascope_ray.config import RewardsConfig

    doc = yaml.safe_load((CONFIGS[0].parents[1] / "deploy" / "rewards.yaml").read_text())
    assert doc["http_options"]["host"] == "127.0.0.1"
    for app in doc["applications"]:
        module, _, attr = app["import_path"].partition(":")
        assert callable(getattr(importlib.import_module(module), attr))
        RewardsConfig.model_validate(app["args"])


def test_resume_mismatches_name_only_fields_that_shape_training():
    from adascope_ray.config import config_from_dict, resume_mismatches

    base = {"data": {"prompts": ["a", "b"], "prompts_per_iteration": 2}}
    saved = config_from_dict(base)
    longer = config_from_dict({**base, "run": {"iterations": 99, "checkpoint_every": 5},
                               "cluster": {"num_cpus": 4}, "sampler": {"num_cpus": 0.5}})
    assert resume_mismatches(saved, longer) == []  # length, checkpointing and resources may change
    changed = config_from_dict({**base, "learner": {"lr": 0.5}, "window": {"strategy": "full"}})
    assert resume_mismatches(saved, changed) == ["learner.lr: 0.0003 -> 0.5", "window.strategy: 'adascope' -> 'full'"]


def test_algorithm_settings_that_cannot_run_are_refused():
    tiny = CONFIGS[[p.name for p in CONFIGS].index("tiny.yaml")]
    # LaSRO differentiates through the whole chain: few-step generation only
    with pytest.raises(ConfigError, match=r"sampling.num_steps must be <= 2 \(got 16\)"):
        load_config(tiny, ["learner.algorithm=lasro"])
    assert load_config(tiny, ["learner.algorithm=lasro", "sampling.num_steps=2"]).learner.algorithm == "lasro"
    # SQDF's differentiable reward: a component without a gradient is named
    with pytest.raises(ConfigError, match=r"rewards.components \['jpeg_compressibility'\] have no differentiable form"):
        load_config(tiny, ["learner.algorithm=sqdf", "learner.sqdf.reward=differentiable",
                           "rewards.components=[{name: scene_check}, {name: jpeg_compressibility}]"])
    # scene_check has a smooth form (rewards/scene_soft.py)
    assert load_config(tiny, ["learner.algorithm=sqdf", "learner.sqdf.reward=differentiable"]).learner.sqdf.reward == "differentiable"
    # draft differentiates the run's rewards themselves: the same rule, named for draft
    with pytest.raises(ConfigError, match=r"learner.algorithm=draft: rewards.components \['jpeg_compressibility'\] have no differentiable form"):
        load_config(tiny, ["learner.algorithm=draft", "rewards.components=[{name: scene_check}, {name: jpeg_compressibility}]"])
    assert load_config(tiny, ["learner.algorithm=draft"]).learner.draft.optimizer_steps == 2


def test_an_embedding_semantic_signal_needs_a_clip_family_reward_of_the_run():
    tiny = CONFIGS[[p.name for p in CONFIGS].index("tiny.yaml")]
    # scene_check has no image embedder; the reward must be named and be among the components
    with pytest.raises(ConfigError, match=r"window.semantic.reward='scene_check'.*\['scene_check'\].*clip_score, pickscore, aesthetic"):
        load_config(tiny, ["window.semantic.source=embedding", "window.semantic.reward=scene_check"])
    with pytest.raises(ConfigError, match=r"window.semantic.reward='pickscore'"):
        load_config(tiny, ["window.semantic.source=embedding", "window.semantic.reward=pickscore"])
    with pytest.raises(ConfigError, match=r"window.semantic.reward=None"):
        load_config(tiny, ["window.semantic.source=embedding"])
    with pytest.raises(ConfigError, match=r"probe_every"):
        load_config(tiny, ["window.semantic.probe_every=0"])
    ok = load_config(tiny, ["window.semantic.source=embedding", "window.semantic.reward=pickscore",
                            "rewards.components=[{name: scene_check}, {name: pickscore, path: /x, weight: 0}]"])
    assert ok.window.semantic.reward == "pickscore" and ok.window.semantic.probe_every == 4


def test_the_reward_evolution_end_needs_the_reward_trace():
    tiny = CONFIGS[[p.name for p in CONFIGS].index("tiny.yaml")]
    with pytest.raises(ConfigError, match=r"window.adascope.tau_r reads the reward-evolution signal: set window.reward_trace.enabled=true"):
        load_config(tiny, ["window.adascope.tau_r=0.8"])
    with pytest.raises(ConfigError, match=r"window.adascope.tau_r"):
        load_config(tiny, ["window.adascope.tau_r=1.5", "window.reward_trace.enabled=true"])
    ok = load_config(tiny, ["window.adascope.tau_r=0.8", "window.reward_trace.enabled=true"])
    assert ok.window.adascope.tau_r == 0.8 and ok.window.reward_trace.probe_every == 4


def test_evaluation_scores_scene_check_pass_fail_by_the_mean_whatever_training_uses():
    from adascope_ray.config import RewardComponentConfig

    trained = RewardComponentConfig(name="scene_check", partial_credit=True, aggregate="product")
    assert trained.scorer_options() == {"graded": True, "aggregate": "product"}
    assert trained.evaluation_options() == {"graded": False, "aggregate": "mean"}
    assert RewardComponentConfig(name="jpeg_compressibility").evaluation_options() == {}
