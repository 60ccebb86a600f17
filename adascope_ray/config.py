"""One pydantic config tree for a run.

Every model forbids unknown fields, every number has bounds and every field a
description. Each component receives only its own sub-config (the sampler never sees
the learner's, and so on). `load_config(path, overrides)` reads YAML, applies dotted
`key=value` overrides and validates; any problem raises `ConfigError` whose message
names the file and the field.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DIFFERENTIABLE_REWARDS = ("aesthetic", "clip_score", "hpsv2", "pickscore", "scene_check")  # rewards/differentiable.py, scene_soft.py


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StopConfig(_Strict):
    """Stopping on the in-run evaluation (core/stopping.py): needs eval.every > 0."""
    patience: int = Field(0, ge=0, le=10_000, description="Stop after this many evaluations in a row none of which is better (paired, beyond 2 standard errors) than the last one that was; 0 = never stop early.")
    guard_margin: float | None = Field(None, ge=0, description="Also stop when the evaluation reward falls, paired and beyond noise, more than this below its best; None = no guard.")
    export_best: bool = Field(True, description="Keep the best evaluation's weights as checkpoints/best (highest mean evaluation reward).")


class RunConfig(_Strict):
    name: str = Field("tiny", min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
                      description="Run name: one plain folder name (letters, digits, '_', '.', '-'; not starting with '.'); the run folder is <output_dir>/<name>.")
    output_dir: str = Field("runs", description="Folder that holds run folders.")
    iterations: int = Field(20, ge=1, le=1_000_000, description="Training iterations.")
    seed: int = Field(0, ge=0, description="Seed for prompt order, sampling noise and windows.")
    grid_every: int = Field(5, ge=1, description="Write an image grid every this many iterations (and at the last).")
    checkpoint_every: int = Field(0, ge=0, description="Write a checkpoint every this many iterations; 0 = only the final one.")
    overwrite: bool = Field(False, description="Replace an existing run folder of the same name.")
    keep_checkpoints: int = Field(3, ge=1, le=10_000, description="Newest checkpoints kept in the run folder; older ones are removed.")
    resume: Literal["never", "auto"] = Field("never", description="'auto': when the run folder holds a checkpoint, continue from the newest one (as --resume does); 'never': only with --resume.")
    stop: StopConfig = Field(default_factory=StopConfig, description="Early stopping when the evaluation reward's gain has saturated.")
    tensorboard: bool = Field(False, description="Also write every metrics row as TensorBoard scalars to <run>/tensorboard/ (step = updates done); needs the tensorboard package: pip install 'adascope-ray[tensorboard]'.")


class DataConfig(_Strict):
    prompts: list[str] = Field(default_factory=list, description="Training prompts, used when prompts_file is empty.")
    prompts_file: str | None = Field(None, description="A .txt (one prompt a line) or .parquet (column 'prompt') file of prompts.")
    world_train_captions: int = Field(0, ge=0, le=630, description="Shapes world: train on the first N captions of its train split (adascope_ray/world/splits.py; never in the validation or test split) in place of data.prompts; 0 = use data.prompts / prompts_file.")
    prompts_per_iteration: int = Field(4, ge=1, description="Distinct prompts sampled per iteration.")
    group_size: int = Field(4, ge=2, description="Samples per prompt (G); advantages are normalised within a group.")

    @model_validator(mode="after")
    def _has_prompts(self) -> "DataConfig":
        if not self.prompts and not self.prompts_file and not self.world_train_captions:
            raise ValueError("give data.prompts, data.prompts_file or data.world_train_captions")
        if self.world_train_captions and self.prompts_file:
            raise ValueError("give data.prompts_file or data.world_train_captions, not both "
                             "(data.world_train_captions=0 trains on the prompts file)")
        if any(not p.strip() for p in self.prompts):
            raise ValueError("data.prompts holds an empty prompt")
        return self


class ModelConfig(_Strict):
    path: str = Field("builtin:tiny", description="Local directory of a diffusers pipeline (Stable Diffusion 1.x/2.x, SDXL or SD3-class); 'builtin:tiny' / 'builtin:tiny-sdxl' / 'builtin:tiny-sd3' (random-init, built from config with a fixed seed, saved and loaded like any checkpoint); or 'builtin:shapes' (the shapes world's trained 32 px model, shipped in the package).")
    cache_dir: str = Field("~/.cache/adascope_ray", description="Where 'builtin:tiny' is saved.")
    tiny_seed: int = Field(0, ge=0, description="Seed of the builtin tiny model's random initialisation.")
    resolution: int = Field(32, ge=8, le=2048, multiple_of=8, description="Image side in pixels.")
    trainable: Literal["lora", "full"] = Field("lora", description="Train LoRA adapters on the denoiser (UNet or SD3 transformer), or the whole denoiser.")
    lora_rank: int = Field(4, ge=1, le=256, description="LoRA rank r.")
    lora_alpha: float = Field(4.0, gt=0, description="LoRA alpha (scale = alpha / r).")
    lora_targets: list[str] = Field(default_factory=lambda: ["to_q", "to_k", "to_v", "to_out.0"], min_length=1, description="UNet module names that get LoRA adapters.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="'auto' uses CUDA when the process has a GPU.")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="Weights and activations of the frozen model (mixed precision); trainable parameters and the optimizer stay float32.")
    gradient_checkpointing: bool = Field(False, description="Recompute the denoiser's activations in the backward pass: less learner memory, more compute.")
    adapter_steps: tuple[int, int] | None = Field(None, description="[lo, hi): the denoising steps (0 = the noisiest) at which the LoRA acts, in sampling, training and evaluation alike; at the other steps the base model acts, so the steps a window never trains cannot drift with the adapter the window's steps share. None: every step. An exported LoRA then needs the same gate (docs/adascope.md).")

    @model_validator(mode="after")
    def _shapes_size(self) -> "ModelConfig":
        if self.path == "builtin:shapes" and self.resolution != 32:
            raise ValueError(f"resolution: builtin:shapes is trained at 32 px, got {self.resolution}")
        if self.adapter_steps is not None:
            lo, hi = self.adapter_steps
            if not 0 <= lo < hi:
                raise ValueError(f"model.adapter_steps: need 0 <= lo < hi, got {list(self.adapter_steps)}")
            if self.trainable != "lora":
                raise ValueError("model.adapter_steps gates LoRA adapters: it needs model.trainable=lora")
        if self.trainable == "full" and self.dtype != "float32":
            # the sampler would run the weights in model.dtype while the learner trains them in
            # float32: the two log-probs differ by more than DDPO's clip range and every ratio clips
            raise ValueError(f"model.dtype={self.dtype} with model.trainable=full: full fine-tuning keeps the whole "
                             "denoiser in float32 (use model.dtype=float32, or model.trainable=lora to keep the "
                             "frozen model in reduced precision)")
        return self


class SamplingConfig(_Strict):
    """Shared by sampler and learner: both must run the same policy."""
    num_steps: int = Field(20, ge=2, le=1000, description="Denoising steps K.")
    eta: float = Field(1.0, gt=0, le=1.0, description="DDIM eta, or the flow-matching SDE noise level a (> 0: every step is stochastic and has a log-prob).")
    guidance_scale: float = Field(4.5, ge=1.0, le=30.0, description="Classifier-free guidance scale; 1 turns guidance off.")
    initial_noise: Literal["per_sample", "per_group"] = Field("per_sample", description="Starting latent x_T: 'per_sample' draws one for every trajectory; 'per_group' gives the G trajectories of a prompt the same x_T, so their rewards differ only by the policy's actions (the per-step noise) and the group-normalised advantage credits the actions, not the start.")


class SamplerConfig(_Strict):
    num_samplers: int = Field(1, ge=1, le=1024, description="Sampler actors.")
    num_cpus: float = Field(1.0, ge=0, description="CPUs reserved per sampler actor.")
    num_gpus: float = Field(0.0, ge=0, description="GPUs reserved per sampler actor.")
    batch_size: int = Field(8, ge=1, description="Trajectories per forward batch on one sampler.")
    torch_threads: int = Field(2, ge=1, le=256, description="torch intra-op threads in the actor (Ray sets OMP_NUM_THREADS=1).")
    reward_timeout_s: float = Field(120.0, gt=0, description="Timeout of one call to the reward application.")
    reward_attempts: int = Field(6, ge=1, le=20, description="Tries per reward call (the app may be mid-update, redeployed or replacing a replica); waits 2, 4, 8, 16 s, then 30 s between tries.")
    max_restarts: int = Field(3, ge=0, le=1000, description="Restarts of a dead sampler actor over the run; its lost shard is redone with the current weights.")
    restart_timeout_s: float = Field(300.0, gt=0, description="How long to wait for a restarted sampler to answer.")


class AdvantageConfig(_Strict):
    mode: Literal["group", "tracker"] = Field("group", description="'group': statistics of the G samples of a prompt; 'tracker': DDPO's running per-prompt statistics.")
    normalise: Literal["total", "each_part"] = Field("total", description="'total': normalise the weighted total reward within a group; 'each_part': normalise each part within its group first (each reward, and each check of a reward that has checks, e.g. scene_check's colour, count, shape, position, background, weighted by its reward's weight over its number of checks), sum them by weight and normalise the sum (core/advantages.py), so a check with a small spread in a group counts as much as one with a large spread. Needs mode=group.")
    clip: float = Field(5.0, gt=0, description="Advantages are clipped to +-clip (A_max).")
    std_eps: float = Field(1e-4, gt=0, description="Added to the std before dividing.")
    tracker_buffer: int = Field(32, ge=2, description="Rewards kept per prompt by the tracker.")
    tracker_min_count: int = Field(16, ge=2, description="Below this many rewards for a prompt the tracker uses the batch statistics.")

    @model_validator(mode="after")
    def _each_part(self) -> "AdvantageConfig":
        if self.normalise == "each_part" and self.mode != "group":
            raise ValueError("advantage.normalise=each_part needs advantage.mode=group (the tracker keeps totals only)")
        return self


class KLConfig(_Strict):
    """The KL term to the reference (the model before training) added to the loss."""
    beta: float = Field(0.0, ge=0, le=1e6, description="Weight β of KL(π_θ ‖ π_ref) per trained (sample, step) pair, β ‖μ_θ − μ_ref‖² / 2σ_k² averaged over latent dimensions; 0 = off. Each trained pair then costs one more denoiser pass (the reference's), counted in the learner's cost.")


class OffPolicyConfig(_Strict):
    """How the update treats rollouts sampled by older weights (learner.max_staleness ≥ 1)."""
    correction: Literal["decoupled", "none"] = Field("decoupled", description="decoupled: recompute a stale sample's log-probs with the learner's weights before the update (π_prox, one no-grad denoiser pass per trained pair, counted in the learner's cost), clip the ratio around those and weight each term by min(π_prox / π_behaviour, is_cap) (docs/adascope.md); none: clip around the behaviour log-probs as for fresh samples.")
    is_cap: float = Field(2.0, ge=1.0, description="Cap c of the importance weight π_prox / π_behaviour of a stale sample's term.")


class LearnerGroupConfig(_Strict):
    """Data-parallel learner ranks: one torch.distributed process group, each rank
    differentiating a share of every optimizer step's pairs, gradients summed."""
    num_ranks: int = Field(1, ge=1, le=256, description="Learner actors in the group; each reserves learner.num_cpus and learner.num_gpus. Rank 0 publishes weights and writes checkpoints.")
    backend: Literal["auto", "gloo", "nccl"] = Field("auto", description="torch.distributed backend; auto = nccl when learner.num_gpus >= 1, else gloo.")
    timeout_s: float = Field(600.0, gt=0, description="How long a rank waits for the others (joining, and every all-reduce) before it fails.")
    sharding: Literal["none", "fsdp"] = Field("none", description="none: every rank holds the whole trainable state and the gradients are all-reduced; fsdp: each rank holds 1/N of the weights, their gradients and AdamW's moments (torch FSDP2, learner/sharding.py), for full fine-tuning of a denoiser whose training state does not fit one device. fsdp needs model.trainable=full, num_ranks >= 2, learner.algorithm=ppo and publish.method=object_store.")


class SqdfConfig(_Strict):
    """SQDF (arXiv 2512.04559): a reparameterised policy gradient of a differentiable soft-Q
    estimate at one step k of a stored trajectory (core/sqdf.py, docs/algorithms.md)."""
    gamma: float = Field(0.99, gt=0, le=1.0, description="Discount γ: a step k's soft-Q estimate is γ^(K−k−1) times the reward of its one-step x̂0 prediction.")
    alpha: float = Field(1e-3, ge=0, description="Weight α of the KL term mean((μ_ref − μ_θ)²)/σ_k² to the reference (the model before training).")
    reward: Literal["surrogate", "differentiable"] = Field("surrogate", description="What r is: 'surrogate', the latent-space reward model trained online from the Serve rewards (learner.surrogate); 'differentiable', the run's reward components themselves through torch on the decoded image (each must have a differentiable form: the CLIP-family scorers aesthetic, pickscore, hpsv2, clip_score, or scene_check's smooth form, rewards/scene_soft.py).")
    batch_size: int = Field(16, ge=1, description="Trajectories per optimizer step (each contributes one step k).")
    optimizer_steps: int = Field(4, ge=1, le=1000, description="Optimizer steps per update.")


class LasroConfig(_Strict):
    """LaSRO (arXiv 2411.15247): few-step generation fine-tuned by the gradient of a learned
    latent-space surrogate reward, back-propagated through the whole (≤ 2-step) chain."""
    alpha: float = Field(1e-3, ge=0, description="Weight α of the per-step KL term mean((μ_ref − μ_θ)²)/σ_k² to the reference, summed over the chain's steps.")
    batch_size: int = Field(16, ge=1, description="Chains per optimizer step, each started from a stored trajectory's x_T.")
    optimizer_steps: int = Field(4, ge=1, le=1000, description="Optimizer steps per update.")


class RaftConfig(_Strict):
    """Reward-ranked fine-tuning (RAFT, arXiv 2304.06767): the denoising loss on each prompt
    group's best samples, at the noise levels of the window's steps (core/raft.py)."""
    top_k: int = Field(1, ge=1, description="Samples kept per prompt group, highest reward first; a group whose rewards all tie keeps none.")
    batch_size: int = Field(16, ge=1, description="(kept sample, step) terms per optimizer step, each with fresh noise.")
    optimizer_steps: int = Field(4, ge=1, le=1000, description="Optimizer steps per update.")
    fit: Literal["conditional", "guided"] = Field("conditional", description="What is fitted to the target: 'conditional', the text-conditioned prediction alone (ordinary fine-tuning, one denoiser pass a term); 'guided', the classifier-free-guided prediction the samplers run (two passes a term under CFG).")


class DraftConfig(_Strict):
    """Direct reward backpropagation (DRaFT arXiv 2309.17400, AlignProp arXiv 2310.03739):
    the chain from the stored x at the window's start to x_K with a gradient, the rewards'
    differentiable forms on decode(x_K), the weights trained inside the window only
    (learner/draft.py)."""
    batch_size: int = Field(8, ge=1, description="Chains per optimizer step, each from a trajectory of the fresh batch (drawn with repeats) with fresh noise.")
    optimizer_steps: int = Field(2, ge=1, le=1000, description="Optimizer steps per update.")
    alpha: float = Field(0.0, ge=0, description="Weight α of the KL term Σ_k mean((μ_ref − μ_θ)²)/σ_k² over the window's steps (0: none, and no reference passes).")


class SurrogateConfig(_Strict):
    """The latent-space surrogate reward model (sqdf with reward=surrogate, lasro): a small head
    on the frozen reference denoiser's mid-block features of a latent, trained online on the
    learner from the Serve rewards with a ranking loss within prompt groups."""
    hidden: int = Field(128, ge=8, le=4096, description="Width of the head's hidden layer.")
    lr: float = Field(1e-3, gt=0, lt=1.0, description="Adam learning rate of the head.")
    steps_per_update: int = Field(50, ge=0, le=100000, description="Head training steps per learner update, on groups drawn from the replay buffer.")
    groups_per_step: int = Field(16, ge=1, description="Prompt groups per head training step.")
    margin: float = Field(0.0, ge=0, description="Reward gap below which a pair of samples is not ranked.")
    warmup_updates: int = Field(1, ge=0, description="Updates in which only the surrogate trains (the policy waits until the surrogate has seen this many batches).")


class ReplayConfig(_Strict):
    """The learner's replay buffer of scored trajectories (sqdf, lasro): what the surrogate
    trains on and where off-policy trajectories come from."""
    capacity: int = Field(2048, ge=1, description="Trajectories kept; the oldest go first.")
    ratio: float = Field(0.5, ge=0, le=1.0, description="Share of a policy step's trajectories drawn from the buffer's older entries; the rest come from the fresh batch.")
    sampling: Literal["uniform", "prioritised"] = Field("uniform", description="How stored trajectories are drawn: uniformly, or in proportion to (r − min r + 1e-3) · decay^age (age in weight versions).")
    decay: float = Field(0.9, gt=0, le=1.0, description="Per-version decay of a stored trajectory's priority (prioritised sampling).")


class LearnerConfig(_Strict):
    algorithm: Literal["ppo", "sqdf", "lasro", "raft", "draft"] = Field("ppo", description="The update. ppo: clipped policy gradient on the window's steps (DDPO/GRPO); sqdf: reparameterised gradient of a differentiable soft-Q estimate at one window step per trajectory (learner.sqdf); lasro: the surrogate's gradient through a few-step (≤ 2 steps) chain (learner.lasro); raft: the denoising loss on each group's best samples at the window's noise levels (learner.raft); draft: the differentiable reward's gradient back through the chain from the window's start, the weights trained in the window (learner.draft). docs/algorithms.md compares them.")
    sqdf: SqdfConfig = Field(default_factory=SqdfConfig, description="SQDF's settings (learner.algorithm=sqdf).")
    lasro: LasroConfig = Field(default_factory=LasroConfig, description="LaSRO's settings (learner.algorithm=lasro).")
    raft: RaftConfig = Field(default_factory=RaftConfig, description="Reward-ranked fine-tuning's settings (learner.algorithm=raft).")
    draft: DraftConfig = Field(default_factory=DraftConfig, description="Direct reward backpropagation's settings (learner.algorithm=draft).")
    surrogate: SurrogateConfig = Field(default_factory=SurrogateConfig, description="The latent-space surrogate reward (sqdf with reward=surrogate, lasro).")
    replay: ReplayConfig = Field(default_factory=ReplayConfig, description="The replay buffer (sqdf, lasro).")

    lr: float = Field(3e-4, gt=0, lt=1.0, description="AdamW learning rate.")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay.")
    adam_betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas (beta1, beta2), each in [0, 1).")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient norm clipping.")
    clip_range: float = Field(1e-4, gt=0, lt=1.0, description="PPO ratio clip epsilon (DDPO uses 1e-4).")
    inner_epochs: int = Field(1, ge=1, le=100, description="Passes over the selected steps per iteration.")
    optimizer_steps_per_epoch: int = Field(1, ge=1, description="Optimizer steps per pass (selected steps are split evenly).")
    micro_batch_size: int = Field(8, ge=1, description="(sample, step) pairs per forward/backward.")
    max_staleness: int = Field(0, ge=0, description="The schedule. 0: synchronous (the samplers wait while the learner trains). S >= 1: bounded-asynchronous: the samplers generate the next iteration's rollouts with the weights they hold while the learner trains on the last ones (one iteration in flight, so a rollout is 1 version old); a rollout more than S versions old is dropped and counted.")
    num_cpus: float = Field(1.0, ge=0, description="CPUs reserved for the learner actor.")
    num_gpus: float = Field(0.0, ge=0, description="GPUs reserved for the learner actor.")
    torch_threads: int = Field(2, ge=1, le=256, description="torch intra-op threads in the learner actor.")
    seed: int = Field(0, ge=0, description="Seed of the learner's window and shuffling RNG.")
    kl: KLConfig = Field(default_factory=KLConfig, description="KL term to the reference model.")
    off_policy: OffPolicyConfig = Field(default_factory=OffPolicyConfig, description="The correction for rollouts sampled by older weights.")
    group: LearnerGroupConfig = Field(default_factory=LearnerGroupConfig, description="Data-parallel learner ranks.")

    @model_validator(mode="after")
    def _betas(self) -> "LearnerConfig":
        for i, b in enumerate(self.adam_betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"learner.adam_betas[{i}] must be in [0, 1), got {b}")
        return self


class FractionConfig(_Strict):
    """fraction: a random subset of steps per sample, drawn again every pass (DDPO)."""
    fraction: float = Field(0.5, gt=0, le=1.0, description="Share of the K steps drawn per sample: floor(f K), at least 1.")


class RandomWindowConfig(_Strict):
    """random_window: one contiguous window per iteration at a random start (Flow-GRPO-Fast)."""
    size: int = Field(6, ge=1, description="Window length in steps.")
    start_range: tuple[int, int] = Field((0, 10), description="Inclusive range of the start step.")

    @model_validator(mode="after")
    def _range(self) -> "RandomWindowConfig":
        lo, hi = self.start_range
        if lo < 0 or hi < lo:
            raise ValueError(f"window.random_window.start_range must be 0 <= lo <= hi, got {self.start_range}")
        return self


class SlidingConfig(_Strict):
    """sliding: a window that moves later as training proceeds (MixGRPO)."""
    size: int = Field(6, ge=1, description="Window length in steps.")
    start: int = Field(0, ge=0, description="First window start.")
    every: int = Field(5, ge=1, description="Iterations between moves.")
    stride: int = Field(1, ge=1, description="Steps per move.")


class CreditConfig(_Strict):
    """credit (ours): per prompt group, the window of `size` steps where the samples' reward
    is still being decided: the largest summed within-group variance of the reward
    increments R_{k+1} − R_k of the reward trace (core/window.py, docs/adascope.md)."""
    size: int = Field(5, ge=1, description="Window length in steps; needs window.reward_trace.enabled (probe_every 1 gives every step its own increment).")


class AdaScopeConfig(_Strict):
    """adascope: the window from the group's signal traces and the schedule prior (docs/adascope.md)."""
    tau_s: float = Field(0.5, ge=-1, le=1, description="Start when the group-mean structural signal S_k reaches this.")
    tau_e: float = Field(0.95, ge=-1, le=1, description="End when the group-mean semantic signal C_k reaches this.")
    eps_conv: float = Field(0.02, ge=0, description="Or end when the group-mean convergence D_k drops below this.")
    w_min: int = Field(2, ge=1, description="Minimum window length before the end rule may fire.")
    w_max: int | None = Field(None, ge=1, description="Maximum window length; None = ceil(0.3 K).")
    use_prior: bool = Field(True, description="Clamp the window with the Theorem 2 schedule prior [k_lo, k_hi].")
    tau_r: float | None = Field(None, gt=0, le=1, description="Or end when the group's reward evolution is this far done: ρ_k = (R̄_k − R̄_0)/(R̄_{K−1} − R̄_0) ≥ tau_r, R̄_k the group-mean reward of decode(x̂0_k). None: not used. Needs window.reward_trace.enabled.")

    @model_validator(mode="after")
    def _lengths(self) -> "AdaScopeConfig":
        if self.w_max is not None and self.w_max < self.w_min:
            raise ValueError(f"window.adascope.w_max ({self.w_max}) is below window.adascope.w_min ({self.w_min})")
        return self

    def resolved_w_max(self, num_steps: int) -> int:
        return self.w_max if self.w_max is not None else math.ceil(0.3 * num_steps)


_MOVED_WINDOW_KEYS = {
    **{k: f"adascope.{k}" for k in ("tau_s", "tau_e", "eps_conv", "w_min", "w_max", "use_prior")},
    "size": "random_window.size (or sliding.size)", "start_range": "random_window.start_range",
    "slide_start": "sliding.start", "slide_every": "sliding.every", "slide_stride": "sliding.stride",
}


class SemanticConfig(_Strict):
    """The semantic-consistency signal C_k (docs/adascope.md, "Signals"): from the latents
    (weight-free), or from a CLIP-family reward's image embedding of decode(x̂0_k)."""
    source: Literal["latent", "embedding"] = Field("latent", description="'latent': Pearson(x̂0_k, x̂0_{K-1}) at full resolution, no extra passes. 'embedding': cos(e(decode(x̂0_k)), e(final image)) with e the image embedder of the reward named in `reward`, probed every `probe_every` steps; each probe costs a VAE decode and an embedder pass per sample.")
    reward: str | None = Field(None, description="source=embedding: the rewards.components entry whose image embedder is used (one of clip_score, pickscore, aesthetic).")
    probe_every: int = Field(4, ge=1, le=1000, description="source=embedding: probe steps 0, p, 2p, … and the last; a step between probes holds the last probe's value (the end rule then fires at a probe, never early).")


class RewardTraceConfig(_Strict):
    """The reward-evolution signal R_k (docs/adascope.md, "Signals"): the run's reward of
    decode(x̂0_k), the image the sample would be if denoising stopped at step k."""
    enabled: bool = Field(False, description="Score decode(x̂0_k) with the run's reward at the probed steps (one VAE decode and one reward pass per sample and probe); adascope's tau_r reads it.")
    probe_every: int = Field(4, ge=1, le=1000, description="Probe steps 0, p, 2p, … and the last; a step between probes holds the last probe's value.")


class WindowConfig(_Strict):
    """Which denoising steps enter the update: the strategy (core/window.py's registry)
    and its own sub-config; the signal and prior settings every strategy logs."""
    strategy: Literal["full", "fraction", "random_window", "sliding", "adascope", "credit"] = Field("adascope", description="Which denoising steps enter the update; its settings are in the sub-section of the same name.")
    fraction: FractionConfig = Field(default_factory=FractionConfig, description="Settings of strategy 'fraction'.")
    random_window: RandomWindowConfig = Field(default_factory=RandomWindowConfig, description="Settings of strategy 'random_window'.")
    sliding: SlidingConfig = Field(default_factory=SlidingConfig, description="Settings of strategy 'sliding'.")
    adascope: AdaScopeConfig = Field(default_factory=AdaScopeConfig, description="Settings of strategy 'adascope'.")
    credit: CreditConfig = Field(default_factory=CreditConfig, description="Settings of strategy 'credit'.")
    placement: Literal["learner", "sampler"] = Field("learner", description="Where the window acts. 'learner': every step is sampled stochastically and the learner trains the window's steps. 'sampler': the window the learner selects at one iteration is published for the next; the samplers run only its steps stochastically (η = 0 outside it, no noise, no log-prob), a group shares its x_T and one deterministic prefix up to the window's start, computed once per group, only the window's latents x_start … x_end travel to the learner, and the learner trains exactly the stochastic steps. The first iteration samples every step. Needs sampling.initial_noise = per_group.")
    pool: int = Field(8, ge=1, description="Average-pool kernel P for the structural signal (computed by the samplers for every strategy).")
    semantic: SemanticConfig = Field(default_factory=SemanticConfig, description="How the samplers compute the semantic signal C_k.")
    reward_trace: RewardTraceConfig = Field(default_factory=RewardTraceConfig, description="The reward-evolution signal R_k, computed by the samplers when enabled.")
    prior_lo: float = Field(0.5, gt=0, lt=1, description="Schedule prior: k_lo = first k with pooled psi >= this.")
    prior_hi: float = Field(0.9, gt=0, lt=1, description="Schedule prior: k_hi = first k with full-resolution psi >= this.")

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data):
        """Settings that were flat keys of window: name their sub-config."""
        if isinstance(data, dict):
            for old, new in _MOVED_WINDOW_KEYS.items():
                if old in data:
                    raise ValueError(f"window.{old} is now window.{new}")
            if isinstance(data.get("fraction"), (int, float)):
                raise ValueError("window.fraction is now window.fraction.fraction")
        return data

    @property
    def settings(self):
        """The chosen strategy's own sub-config (None for 'full', which has none)."""
        return getattr(self, self.strategy, None) if self.strategy != "full" else None


class EvalConfig(_Strict):
    """In-run evaluation (docs/evaluation.md): the current policy samples fixed prompts
    with fixed noise, so successive evaluations are paired sample for sample."""
    every: int = Field(0, ge=0, description="Evaluate before training, every this many iterations and after the last; 0 = never.")
    prompts: list[str] = Field(default_factory=list, description="Evaluation prompts; empty = world_split captions of the shapes world.")
    world_split: Literal["validation", "test"] = Field("validation", description="Shapes world split used when prompts is empty: 'validation' for anything a rule decides (the default), 'test' for reporting only.")
    num_prompts: int = Field(32, ge=1, le=233, description="Captions taken from world_split.")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1, max_length=64, description="Noise seeds: every prompt is sampled once per seed, with the same noise at every evaluation.")
    grid_prompts: int = Field(8, ge=0, le=64, description="Prompts drawn in samples/eval_XXXX.png (one row each, one column per seed); 0 = no grid.")


class AutoscalingConfig(_Strict):
    """Serve autoscaling of one reward deployment (Serve's own autoscaling_config)."""
    min_replicas: int = Field(1, ge=0, le=1024, description="Fewest replicas Serve keeps.")
    max_replicas: int = Field(4, ge=1, le=1024, description="Most replicas Serve starts.")
    initial_replicas: int | None = Field(None, ge=0, le=1024, description="Replicas at deploy time; None = min_replicas.")
    target_ongoing_requests: float = Field(2.0, gt=0, description="Ongoing requests per replica Serve aims for.")
    upscale_delay_s: float = Field(30.0, ge=0, description="Seconds demand must stay high before adding replicas.")
    downscale_delay_s: float = Field(600.0, ge=0, description="Seconds demand must stay low before removing replicas.")

    @model_validator(mode="after")
    def _bounds(self) -> "AutoscalingConfig":
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"max_replicas ({self.max_replicas}) is below min_replicas ({self.min_replicas})")
        if self.initial_replicas is not None and not self.min_replicas <= self.initial_replicas <= self.max_replicas:
            raise ValueError(f"initial_replicas ({self.initial_replicas}) is outside [min_replicas, max_replicas]")
        return self


MODEL_REWARDS = ("clip_score", "pickscore", "aesthetic", "hpsv2")
CLIP_REWARDS = ("clip_score", "pickscore", "aesthetic")  # rewards whose scorer has a CLIP image embedder


class SoftSceneConfig(_Strict):
    """How smooth scene_check's differentiable form is (rewards/scene_soft.py), for the
    learners that differentiate the reward (draft, lasro, sqdf with reward=differentiable).
    Wider edges let a gradient step move further before the reward stops following it;
    the logged and evaluated reward stays scene_check's own."""
    temperature: float = Field(12.0, gt=0, le=1000, description="T: RGB units of the softmax that assigns a pixel to its nearest palette colour.")
    edge: float = Field(5.0, gt=0, le=1000, description="W: RGB units of the logistic edge at scene_check's colour radius.")


class RewardComponentConfig(_Strict):
    name: Literal["jpeg_compressibility", "jpeg_incompressibility", "color_match", "http", "clip_score", "pickscore", "aesthetic", "hpsv2", "ocr", "scene_check"] = Field(description="Reward scorer (see adascope_ray/rewards/); 'http' calls an external reward server at url; clip_score, pickscore, aesthetic and hpsv2 load weights from path; 'ocr' matches the prompt's quoted text with tesseract; 'scene_check' verifies shapes-world prompts (colour, count, shape, position, background).")
    path: str | None = Field(None, description="clip_score / pickscore / aesthetic: local transformers CLIPModel folder (config.json + weights); hpsv2: the checkpoint file; ocr: the tesseract program (None = 'tesseract' on PATH).")
    open_clip_model: str = Field("ViT-H-14", description="hpsv2: open_clip architecture name.")
    open_clip_config: str | None = Field(None, description="hpsv2: a JSON architecture file in open_clip's model-config format, used instead of open_clip_model.")
    processor_path: str | None = Field(None, description="Folder of the model's CLIPProcessor (preprocessor_config.json + tokenizer); None = path.")
    head_path: str | None = Field(None, description="aesthetic: the MLP head's state dict (.safetensors, or .pth read weights-only).")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where a model-based reward runs; 'auto' uses CUDA when the replica has a GPU.")
    dtype: Literal["float32", "float16", "bfloat16"] = Field("float32", description="Model dtype on GPU (CPU always float32).")
    url: str | None = Field(None, pattern=r"^https?://", description="http: the external reward server's endpoint.")
    protocol: Literal["json", "pickle"] = Field("json", description="http: payload convention: 'json' (base64 JPEGs, this project's own endpoint) or 'pickle' (JPEG bytes, the ddpo-pytorch / flow_grpo reward servers).")
    request_timeout_s: float = Field(60.0, gt=0, description="http: timeout of one request to the server.")
    partial_credit: bool = Field(False, description="scene_check: graded checks (how near each is to passing) in place of pass / fail; a denser training signal. Held-out evaluation stays pass / fail.")
    soft: SoftSceneConfig | None = Field(None, description="scene_check: the smoothness of its differentiable form (None: T = 12, W = 5).")
    aggregate: Literal["mean", "product"] = Field("mean", description="scene_check: how the checks make the score: their mean, or their product, with which a sample gains only by keeping every check (one check cannot pay for another). Held-out evaluation (in-run and benchmarks/learning.py) stays the mean.")
    weight: float = Field(1.0, description="Weight in the combined reward.")
    num_replicas: int | None = Field(None, ge=1, le=1024, description="Fixed number of Serve replicas (None = 1, or as autoscaling decides when that is set).")
    autoscaling: AutoscalingConfig | None = Field(None, description="Let Serve scale this deployment between bounds; excludes num_replicas.")
    num_cpus: float = Field(0.0, ge=0, description="CPUs reserved per replica.")
    num_gpus: float = Field(0.0, ge=0, description="GPUs reserved per replica.")
    max_batch_size: int = Field(32, ge=1, description="@serve.batch: most requests scored together in one call (each request carries one or more images).")
    batch_wait_timeout_s: float = Field(0.01, ge=0, description="@serve.batch wait for a fuller batch.")

    @model_validator(mode="after")
    def _one_scaling_mode(self) -> "RewardComponentConfig":
        if self.num_replicas is not None and self.autoscaling is not None:
            raise ValueError(f"reward {self.name}: give num_replicas or autoscaling, not both")
        if (self.name == "http") != (self.url is not None):
            raise ValueError(f"reward {self.name}: url is required for 'http' and only for it")
        if self.name in MODEL_REWARDS and not self.path:
            raise ValueError(f"reward {self.name}: path (the CLIP weights folder) is required")
        if self.partial_credit and self.name != "scene_check":
            raise ValueError(f"reward {self.name}: partial_credit applies to 'scene_check' only")
        if self.soft is not None and self.name != "scene_check":
            raise ValueError(f"reward {self.name}: soft applies to 'scene_check' only")
        if self.aggregate != "mean" and self.name != "scene_check":
            raise ValueError(f"reward {self.name}: aggregate applies to 'scene_check' only")
        if (self.name == "aesthetic") != (self.head_path is not None):
            raise ValueError(f"reward {self.name}: head_path is required for 'aesthetic' and only for it")
        return self

    def evaluation_options(self) -> dict:
        """Keyword arguments of this reward's scorer as evaluations score: scene_check
        pass / fail and the mean of its checks whatever training uses."""
        opts = self.scorer_options()
        return opts | {"graded": False, "aggregate": "mean"} if self.name == "scene_check" else opts

    def scorer_options(self) -> dict:
        """Keyword arguments of this reward's scorer."""
        if self.name == "http":
            return {"url": self.url, "protocol": self.protocol, "timeout_s": self.request_timeout_s}
        if self.name == "hpsv2":
            return {"path": self.path, "open_clip_model": self.open_clip_model, "open_clip_config": self.open_clip_config,
                    "device": self.device, "dtype": self.dtype}
        if self.name == "ocr":
            return {"path": self.path}
        if self.name == "scene_check":
            return {"graded": self.partial_credit, "aggregate": self.aggregate}
        if self.name in MODEL_REWARDS:
            opts = {"path": self.path, "processor_path": self.processor_path, "device": self.device, "dtype": self.dtype}
            return {**opts, "head_path": self.head_path} if self.name == "aesthetic" else opts
        return {}


class RewardsConfig(_Strict):
    components: list[RewardComponentConfig] = Field(default_factory=lambda: [RewardComponentConfig(name="jpeg_compressibility")], min_length=1, description="Reward components, combined by weight.")
    app_name: str = Field("adascope-rewards", min_length=1, description="Serve application name.")
    deploy: Literal["own", "attach", "attach_or_own"] = Field("own", description="'own': the run deploys the app and removes it at the end; 'attach': use a running app of this name (e.g. from `serve deploy deploy/rewards.yaml`), error if absent or if it scores other components, weights or options than these; 'attach_or_own': attach if running, else deploy.")
    route_prefix: str = Field("/rewards", pattern=r"^/", description="HTTP route of the reward application.")
    http_host: str = Field("127.0.0.1", description="Serve HTTP bind address (loopback unless you mean otherwise).")
    http_port: int = Field(8000, ge=1, le=65535, description="Serve HTTP port.")
    keep_app: bool = Field(False, description="Leave a reward application this run deployed running when the run ends (an attached one is never removed).")
    ready_timeout_s: float = Field(300.0, gt=0, description="How long a deployed reward application may take to reach RUNNING before the run stops with an error.")
    proxy_ready_timeout_s: float = Field(60.0, gt=0, le=3600, description="How long Serve's HTTP proxy may take to start when this run starts Serve before Serve replaces it (Serve's own default, 5 s, is too short on a busy machine).")
    max_request_mb: float = Field(64.0, gt=0, le=4096, description="HTTP: largest request body the reward endpoint accepts (413 above).")

    @model_validator(mode="after")
    def _unique(self) -> "RewardsConfig":
        names = [c.name for c in self.components]
        if len(set(names)) != len(names):
            raise ValueError(f"rewards.components names repeat: {names}")
        return self


class PublishConfig(_Strict):
    """How new weights travel from the learner to the samplers."""
    method: Literal["object_store", "collective"] = Field("object_store", description="'object_store': one put, every sampler reads it (LoRA, small models); 'collective': a ray.util.collective broadcast from the learner (rank 0) to the samplers (full fine-tuning of large models).")
    backend: Literal["auto", "gloo", "nccl"] = Field("auto", description="collective: 'gloo' (CPU tensors), 'nccl' (GPU tensors, every member needs a GPU); 'auto' = nccl when learner and samplers have GPUs, else gloo.")
    timeout_s: float = Field(300.0, gt=0, description="collective: rendezvous and operation timeout.")


class ClusterConfig(_Strict):
    address: str | None = Field(None, description="Ray address to join; None starts a local cluster unless RAY_ADDRESS is set.")
    connect_timeout_s: float = Field(30.0, gt=0, description="How long the address may take to answer before the run stops with an error.")
    placement: Literal["none", "PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = Field("none", description="Place the learner and the samplers (one bundle each) in a placement group with this strategy: PACK keeps them on few nodes, SPREAD across nodes; 'none' lets Ray place each actor.")
    placement_timeout_s: float = Field(600.0, gt=0, description="How long to wait for the placement group's resources before failing.")
    num_cpus: int | None = Field(None, ge=1, description="CPUs of a local cluster started by the CLI (None = all).")
    include_dashboard: bool = Field(False, description="Start the dashboard with a local cluster.")


class Config(_Strict):
    run: RunConfig = Field(default_factory=RunConfig, description="Run-level settings.")
    data: DataConfig = Field(description="Prompts and group size.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Backbone and trainable part.")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig, description="The stochastic sampler (policy).")
    sampler: SamplerConfig = Field(default_factory=SamplerConfig, description="Sampler actors.")
    learner: LearnerConfig = Field(default_factory=LearnerConfig, description="Learner actor and update.")
    advantage: AdvantageConfig = Field(default_factory=AdvantageConfig, description="Advantage estimation.")
    window: WindowConfig = Field(default_factory=WindowConfig, description="Timestep window strategy.")
    rewards: RewardsConfig = Field(default_factory=RewardsConfig, description="Reward Serve application.")
    publish: PublishConfig = Field(default_factory=PublishConfig, description="Weight publication from learner to samplers.")
    cluster: ClusterConfig = Field(default_factory=ClusterConfig, description="Ray cluster to use.")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="In-run evaluation on held-out prompts.")

    @model_validator(mode="after")
    def _cross(self) -> "Config":
        k, w = self.sampling.num_steps, self.window
        if w.strategy in ("random_window", "sliding", "credit") and w.settings.size > k:
            raise ValueError(f"window.{w.strategy}.size ({w.settings.size}) exceeds sampling.num_steps ({k})")
        if w.strategy == "random_window" and w.random_window.start_range[1] + w.random_window.size > k:
            raise ValueError(f"window.random_window.start_range end + window.random_window.size must be <= sampling.num_steps ({k})")
        if w.strategy == "sliding" and w.sliding.start + w.sliding.size > k:
            raise ValueError(f"window.sliding.start + window.sliding.size must be <= sampling.num_steps ({k})")
        if self.model.adapter_steps is not None and self.model.adapter_steps[1] > k:
            raise ValueError(f"model.adapter_steps ends at {self.model.adapter_steps[1]}, past sampling.num_steps ({k})")
        if w.placement == "sampler" and self.sampling.initial_noise != "per_group":
            raise ValueError("window.placement=sampler shares a group's start and prefix: set sampling.initial_noise=per_group")
        if self.cluster.placement != "none":
            for role, c in (("sampler", self.sampler), ("learner", self.learner)):
                if c.num_cpus == 0 and c.num_gpus == 0:
                    raise ValueError(f"cluster.placement={self.cluster.placement} needs {role}.num_cpus or {role}.num_gpus > 0 (a placement bundle cannot be empty)")
        if self.publish.method == "collective" and self.publish.backend == "nccl" and (
                self.learner.num_gpus < 1 or self.sampler.num_gpus < 1):
            raise ValueError("publish.backend=nccl needs learner.num_gpus and sampler.num_gpus >= 1 (NCCL moves GPU tensors)")
        g = self.learner.group
        if g.sharding == "fsdp":
            why = [f"{k} (got {v})" for k, v, ok in (
                ("model.trainable=full", self.model.trainable, self.model.trainable == "full"),
                ("learner.group.num_ranks >= 2", g.num_ranks, g.num_ranks >= 2),
                ("learner.algorithm=ppo", self.learner.algorithm, self.learner.algorithm == "ppo"),
                ("publish.method=object_store", self.publish.method, self.publish.method == "object_store")) if not ok]
            if why:
                raise ValueError("learner.group.sharding=fsdp shards a fully fine-tuned denoiser over the group's ranks; "
                                 "it needs " + ", ".join(why))
        if self.learner.group.backend == "nccl" and self.learner.num_gpus < 1:
            raise ValueError("learner.group.backend=nccl needs learner.num_gpus >= 1 per rank (NCCL moves GPU tensors)")
        if self.eval.every and not self.eval.prompts and self.model.path != "builtin:shapes":
            raise ValueError("eval.prompts: give evaluation prompts (world_split captions are for model.path builtin:shapes)")
        if (self.run.stop.patience or self.run.stop.guard_margin is not None) and not self.eval.every:
            raise ValueError("run.stop needs the in-run evaluation: set eval.every > 0")
        if self.data.world_train_captions and self.model.path != "builtin:shapes":
            raise ValueError("data.world_train_captions: the shapes world's captions are for model.path builtin:shapes")
        lr = self.learner
        if lr.algorithm != "ppo" and w.placement == "sampler":
            raise ValueError(f"learner.algorithm={lr.algorithm} needs whole trajectories (x_T … x_K): window.placement=sampler sends only the window's latents; use window.placement=learner")
        if lr.algorithm == "lasro" and self.sampling.num_steps > 2:
            raise ValueError(f"learner.algorithm=lasro fine-tunes few-step generation: sampling.num_steps must be <= 2 (got {self.sampling.num_steps})")
        if (lr.algorithm == "sqdf" and lr.sqdf.reward == "differentiable") or lr.algorithm == "draft":
            bad = [c.name for c in self.rewards.components if c.name not in DIFFERENTIABLE_REWARDS]
            what = "learner.algorithm=draft" if lr.algorithm == "draft" else "learner.sqdf.reward=differentiable"
            if bad:
                raise ValueError(f"{what}: rewards.components {bad} have no differentiable form (only {sorted(DIFFERENTIABLE_REWARDS)})"
                                 + ("; use learner.sqdf.reward=surrogate" if lr.algorithm == "sqdf" else ""))
            if any(c.aggregate != "mean" for c in self.rewards.components):
                raise ValueError(f"{what}: scene_check's differentiable form is the mean of its checks; "
                                 "rewards.components[].aggregate=product has none")
        if w.strategy == "credit" and not w.reward_trace.enabled:
            raise ValueError("window.strategy=credit reads the reward trace: set window.reward_trace.enabled=true")
        if w.adascope.tau_r is not None and not w.reward_trace.enabled:
            raise ValueError("window.adascope.tau_r reads the reward-evolution signal: set window.reward_trace.enabled=true")
        sem = w.semantic
        if sem.source == "embedding":
            names = [c.name for c in self.rewards.components]
            if sem.reward not in CLIP_REWARDS or sem.reward not in names:
                raise ValueError(f"window.semantic.reward={sem.reward!r}: source=embedding needs one of rewards.components "
                                 f"{names} with a CLIP image embedder ({', '.join(CLIP_REWARDS)})")
        if self.data.prompts_per_iteration % self.sampler.num_samplers:
            raise ValueError(f"data.prompts_per_iteration ({self.data.prompts_per_iteration}) must be a multiple of sampler.num_samplers ({self.sampler.num_samplers})")
        return self


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file and the field."""


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for p in parts[:-1]:
        child = node.setdefault(p, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key}: '{p}' is not a section")
        node = child
    node[parts[-1]] = value


def parse_overrides(items: list[str]) -> list[tuple[str, Any]]:
    out = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key or any(not p for p in key.split(".")):
            raise ConfigError(f"override '{item}' is not of the form section.field=value")
        try:
            out.append((key, yaml.safe_load(raw) if raw else ""))
        except yaml.YAMLError as err:
            raise ConfigError(f"override '{item}': the value is not valid YAML ({str(err).splitlines()[0]})") from None
    return out


def _format_errors(source: str, err: ValidationError) -> str:
    lines = [f"{source}: invalid config"]
    for e in err.errors():
        where = ".".join(str(x) for x in e["loc"]) or "(top level)"
        lines.append(f"  {where}: {e['msg']}")
    return "\n".join(lines)


def config_from_dict(tree: dict[str, Any], source: str = "config") -> Config:
    try:
        return Config.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(_format_errors(source, err)) from None


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_tree(p: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a YAML file; a top-level `base: other.yaml` (relative to the file) is
    read first and this file's sections are merged over it."""
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    if p.resolve() in seen:
        raise ConfigError(f"{p}: 'base' files form a cycle")
    try:
        tree = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{p}: not valid YAML: {err}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{p}: top level must be a mapping of sections")
    base = tree.pop("base", None)
    if base is not None:
        tree = _merge(_read_tree(p.parent / str(base), seen + (p.resolve(),)), tree)
    return tree


def load_tree_as(model: type[BaseModel], path: str | Path, overrides: list[str] | None = None):
    """A YAML file (with its `base` files and dotted overrides) validated as `model`;
    any problem raises ConfigError naming the file and the field."""
    p = Path(path)
    tree = _read_tree(p)
    for key, value in parse_overrides(overrides or []):
        _set_dotted(tree, key, value)
    try:
        return model.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(_format_errors(str(p), err)) from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    return load_tree_as(Config, path, overrides)


# Fields that may change between a run and its resumption: length, logging,
# checkpointing and where things run. Everything else shapes the training itself.
RESUMABLE_CHANGES = ("run.iterations", "run.grid_every", "run.tensorboard", "run.checkpoint_every", "run.keep_checkpoints",
                     "run.overwrite", "run.resume", "run.output_dir", "run.name", "cluster", "eval.grid_prompts", "rewards.deploy",
                     "rewards.app_name", "rewards.http_host", "rewards.http_port", "rewards.keep_app", "rewards.proxy_ready_timeout_s",
                     "sampler.num_cpus", "sampler.num_gpus", "sampler.reward_timeout_s", "sampler.reward_attempts",
                     "learner.num_cpus", "learner.num_gpus", "learner.group", "publish", "model.cache_dir", "model.device")


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        out.update(_flatten(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def resume_mismatches(saved: Config, new: Config) -> list[str]:
    """Fields whose change would make a resumed run differ from an uninterrupted one."""
    a, b = _flatten(saved.model_dump(mode="json")), _flatten(new.model_dump(mode="json"))
    free = lambda k: any(k == f or k.startswith(f + ".") for f in RESUMABLE_CHANGES)  # noqa: E731
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if not free(k) and a.get(k) != b.get(k)]


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
