from __future__ import annotations

from dataclasses import dataclass, replace

from osmf_models.common import ConfigMixin

WEIGHTINGS = ("equal", "pairs", "sqrt")
SOURCES = ("observed", "grm", "both", "target")


@dataclass
class GroupDPOConfig(ConfigMixin):
    """Group-DPO on the G-MLLM: LoRA adapters on the LM (peft) plus the group projector are trained;
    the reference is the frozen pre-trained G-MLLM, its log-probs computed once before training."""

    beta: float = 0.1
    group_weighting: str = "equal"  # equal: every group counts the same; pairs: pooled mean (plain DPO); sqrt
    # target (the group's G-MLLM target against the candidates the GRM rates worst), observed pairs,
    # GRM-scored candidate prompts (the best against the worst), or both of those
    pair_source: str = "target"
    grm_pairs_per_group: int = 3  # GRM pairs: the best candidate against this many of the worst
    grm_margin: float = 0.002  # minimum GRM CTR difference for a GRM pair
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    sft_weight: float = 1.0  # + weight x mean NLL of the chosen completions (keeps prompts well formed; 0 = pure DPO)
    train_projector: bool = True  # also train the group projector (needs precomputed reference log-probs)
    epochs: int = 15
    max_steps: int = 600  # at most this many optimizer steps in all (0 = no cap): bounds a large world's time
    batch_size: int = 64
    lr: float = 5e-4
    seed: int = 0

    def __post_init__(self):
        if self.group_weighting not in WEIGHTINGS:
            raise ValueError(f"group_weighting must be one of {WEIGHTINGS}, got {self.group_weighting!r}")
        if self.pair_source not in SOURCES:
            raise ValueError(f"pair_source must be one of {SOURCES}, got {self.pair_source!r}")
        self.target_modules = tuple(self.target_modules)

    @classmethod
    def tiny(cls) -> "GroupDPOConfig":
        return cls(lora_r=4, lora_alpha=8, epochs=3, batch_size=16)

    @classmethod
    def from_section(cls, m) -> "GroupDPOConfig":
        """The config a ``[models]`` settings section asks for (``size``, ``dpo_beta``,
        ``dpo_group_weighting``, ``dpo_pair_source``, ``dpo_epochs``, ``dpo_max_steps``)."""
        cfg = cls.tiny() if m.size == "tiny" else cls()
        cfg = replace(cfg, beta=m.dpo_beta, group_weighting=m.dpo_group_weighting, pair_source=m.dpo_pair_source)
        cfg = replace(cfg, epochs=m.dpo_epochs) if m.dpo_epochs else cfg
        return replace(cfg, max_steps=m.dpo_max_steps) if m.dpo_max_steps >= 0 else cfg
