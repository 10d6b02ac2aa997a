"""A byte-level BPE tokenizer trained offline (``tokenizers``) on the world's own text, wrapped as
a transformers ``PreTrainedTokenizerFast`` so it saves, loads and pads like any hub tokenizer."""

from __future__ import annotations

from pathlib import Path

PAD, BOS, EOS = "<|pad|>", "<|bos|>", "<|eos|>"
DESCRIBE, PROMPT, SEP = "<|describe|>", "<|prompt|>", "<|sep|>"
SPECIAL = [PAD, BOS, EOS, DESCRIBE, PROMPT, SEP]


def train_tokenizer(texts, vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(sorted(set(map(str, texts))), trainer=trainer)
    return wrap(tok)


def wrap(tok):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, bos_token=BOS, eos_token=EOS,
                                   additional_special_tokens=[DESCRIBE, PROMPT, SEP])


def load_tokenizer(path: str | Path):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast.from_pretrained(str(path))
