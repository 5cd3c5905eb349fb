"""A real CLIP byte-level BPE tokenizer over a small vocabulary of whole words, written as a tokenizer folder.

Every word given is a single token; any other text falls back to single characters, exactly as CLIP's tokenizer
treats rare words. The small models of the demo and the tests condition on it.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import CLIPTokenizer

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"

# Whole-word tokens: the prompt templates of the Textual Inversion paper (object and style), words that
# commonly initialise a pseudo-word, and the glue words of short captions.
WORDS = """
a an the of in on at by with and or to for from my one this that is it its as
photo photograph rendering rendition cropped close up bright dark good nice cool clean dirty weird small large
big picture painting style drawing sketch illustration image art artwork portrait sculpture statue figure
object thing toy cat dog person man woman child face bear teddy car house bird flower tree mug cup backpack
bowl clock robot shoe vase chair building landscape city mountain sea sky animal pet plush doll watercolor oil
ink pencil digital anime cartoon realistic texture pattern colorful red green blue yellow black white brown
""".split()

VOCAB_FILE = "vocab.json"
MERGES_FILE = "merges.txt"


def _bytes_to_unicode() -> dict[int, str]:
    """CLIP's reversible map from bytes to printable characters (the base alphabet of its BPE)."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    byte_values, chars = printable[:], printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            byte_values.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(byte_values, map(chr, chars)))


def _apply_merges(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Byte-pair encoding of one word: repeatedly merge the adjacent pair with the lowest rank."""
    while len(symbols) > 1:
        pairs = [(ranks.get(pair, len(ranks)), i) for i, pair in enumerate(zip(symbols, symbols[1:]))]
        rank, i = min(pairs)
        if rank == len(ranks):
            break
        symbols = symbols[:i] + [symbols[i] + symbols[i + 1]] + symbols[i + 2 :]
    return symbols


def build_vocabulary(words: list[str] = WORDS) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A CLIP BPE vocabulary and merge list in which each of ``words`` is a single token.

    Laid out like CLIP's own: the 256 byte characters, the same with the word-final ``</w>`` marker, the merged
    symbols, then the start and end markers (end last, the highest id, as CLIP's pooling expects).
    """
    alphabet = list(_bytes_to_unicode().values())
    ranks: dict[tuple[str, str], int] = {}
    for word in words:
        # Appending a merge at the lowest priority never changes how earlier words are split, so adding merges
        # greedily until this word is whole keeps every earlier word whole too.
        while len(symbols := _apply_merges(list(word[:-1]) + [word[-1] + "</w>"], ranks)) > 1:
            ranks[(symbols[0], symbols[1])] = len(ranks)
    merges = list(ranks)
    tokens = alphabet + [c + "</w>" for c in alphabet]
    tokens += list(dict.fromkeys(a + b for a, b in merges))
    tokens += [BOS, EOS]
    return {token: i for i, token in enumerate(tokens)}, merges


def write_tokenizer(folder: Path, pad_token: str, words: list[str] = WORDS) -> CLIPTokenizer:
    """Write the vocabulary as a CLIP tokenizer folder (vocab.json, merges.txt, configs) and load it back."""
    vocab, merges = build_vocabulary(words)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / VOCAB_FILE).write_text(json.dumps(vocab, ensure_ascii=False, indent=0), encoding="utf-8")
    (folder / MERGES_FILE).write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8"
    )
    special = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": pad_token}
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "do_lower_case": True,
        "add_prefix_space": False,
        "errors": "replace",
        **special,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")
    return CLIPTokenizer.from_pretrained(folder, model_max_length=77)
