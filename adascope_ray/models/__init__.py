"""diffusers adapters and the builtin tiny model (no ray)."""
