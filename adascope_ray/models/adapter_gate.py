"""Where the LoRA acts (`model.adapter_steps`): only at denoising steps lo ≤ k < hi; at
the others the base model, in sampling, training and evaluation alike. A window trains
a few steps; the adapter those steps share would otherwise also act, untrained, at
every other step.

A plain diffusers pipeline with the exported LoRA runs the same gate through
`diffusers_gate(pipe, adapter_steps)`, which returns the `callback_on_step_end` to pass.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def adapters_off(denoiser):
    """The base model inside: the denoiser's LoRA adapters off, then restored to the state
    they were in (so that nesting, e.g. a KL reference pass around a gated step, keeps it)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    layer = next((m for m in denoiser.modules() if isinstance(m, BaseTunerLayer)), None)
    if layer is None or layer.disable_adapters:
        yield
        return
    denoiser.disable_adapters()
    try:
        yield
    finally:
        denoiser.enable_adapters()


def gated(denoiser, adapter_steps: tuple[int, int] | None, idx: torch.Tensor, predict) -> torch.Tensor:
    """The model output for rows at step indices idx (B,), with the LoRA acting only at
    steps lo ≤ k < hi (`model.adapter_steps`) and the base model at the others.
    predict(rows) -> (n, C, H, W) for rows slice(None) (all) or a (B,) bool mask; rows of
    both kinds in one batch (the learner mixes steps) are predicted apart and put back."""
    every = slice(None)
    if adapter_steps is None:
        return predict(every)
    lo, hi = adapter_steps
    on = (idx >= lo) & (idx < hi)                                          # (B,)
    if bool(on.all()):
        return predict(every)
    with adapters_off(denoiser):
        if not bool(on.any()):
            return predict(every)
        off_out = predict(~on)
    on_out = predict(on)
    out = on_out.new_empty((len(idx), *on_out.shape[1:]))
    out[on.to(out.device)] = on_out
    out[(~on).to(out.device)] = off_out.to(out.dtype)
    return out


def diffusers_gate(pipe, adapter_steps: tuple[int, int] | None):
    """For `pipe(..., callback_on_step_end=diffusers_gate(pipe, steps))` with a LoRA loaded
    by `load_lora_weights`: the LoRA on at steps lo ≤ k < hi, off at the others. Sets
    step 0's state now; the callback, run after step i, sets step i + 1's."""
    def set_for(k: int) -> None:
        on = adapter_steps is None or adapter_steps[0] <= k < adapter_steps[1]
        pipe.enable_lora() if on else pipe.disable_lora()

    set_for(0)

    def callback(pipe_, i: int, t, kwargs: dict) -> dict:
        set_for(i + 1)
        return kwargs

    return callback
