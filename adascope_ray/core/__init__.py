"""Pure math: no ray, no diffusers. See docs/adascope.md for the algorithm."""
