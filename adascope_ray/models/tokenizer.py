"""A CLIP tokenizer made offline from the BPE vocabulary that open_clip ships.

OpenAI's CLIP tokenizer is byte-level BPE over `bpe_simple_vocab_16e6.txt.gz`:
the vocabulary is the 256 byte symbols, the same with an end-of-word marker, one
token per merge (the first 49152 - 256 - 2 merges of the file), then the two special
tokens — 49408 ids in all. Writing that out as `vocab.json` + `merges.txt` lets
transformers' `CLIPTokenizer` load it with no hub, giving the exact CLIP ids.
"""
from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

_N_MERGES = 49152 - 256 - 2
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable unicode table (as CLIP uses it)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def open_clip_bpe_path() -> Path:
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "open_clip_torch is not installed: it ships the CLIP BPE vocabulary "
            "(bpe_simple_vocab_16e6.txt.gz) the offline tokenizer is built from"
        )
    path = Path(spec.submodule_search_locations[0]) / "bpe_simple_vocab_16e6.txt.gz"
    if not path.is_file():
        raise FileNotFoundError(f"CLIP BPE vocabulary not found at {path}")
    return path


def write_clip_tokenizer_files(out_dir: str | Path, bpe_path: str | Path | None = None) -> Path:
    """Write vocab.json, merges.txt and the tokenizer config into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = gzip.open(bpe_path or open_clip_bpe_path()).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1 : _N_MERGES + 1]]
    symbols = list(_bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [BOS, EOS]
    (out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (out / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n"
    )
    return out


def build_clip_tokenizer(out_dir: str | Path, max_length: int = 77):
    """Write the files, then load them the way a checkpoint's tokenizer/ loads."""
    from transformers import CLIPTokenizer

    out = write_clip_tokenizer_files(out_dir)
    (out / "tokenizer_config.json").write_text(
        json.dumps({"model_max_length": max_length, "bos_token": BOS, "eos_token": EOS,
                    "unk_token": EOS, "pad_token": EOS, "tokenizer_class": "CLIPTokenizer"})
    )
    return CLIPTokenizer.from_pretrained(str(out), local_files_only=True)
