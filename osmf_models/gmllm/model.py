"""G-MLLM: a causal LM that reads a group and a product image as prefix tokens.

    inputs_embeds = [group_proj(z_g)] ++ [vision(product image)] ++ embed(<bos> <task> title <sep> completion <eos>)

The group projector maps the group feature vector (``groups.features``) to ``group_tokens`` vectors
of the LM's width, the vision tower (a small CNN) maps the product image to ``image_tokens`` more;
both are prepended through ``inputs_embeds``, so the LM attends to them like to any token. Text
tasks: ``<|describe|>`` (describe the group) and ``<|prompt|>`` (write the background prompt of the
group's preferred creative for the product)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from osmf_models.common import load_checkpoint, save_checkpoint
from osmf_models.gmllm.config import GMLLMConfig
from osmf_models.gmllm.loss import completion_logps
from osmf_models.gmllm.tokenizer import BOS, DESCRIBE, EOS, PAD, PROMPT, SEP, SPECIAL, load_tokenizer

TASKS = {"describe": DESCRIBE, "prompt": PROMPT}


def build_lm(cfg: GMLLMConfig, tokenizer):
    """The LM: a Qwen2 from the config, or a real checkpoint (directory or .gguf) when ``lm_path``."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    if cfg.lm_path:
        from transformers import AutoModelForCausalLM

        p = Path(cfg.lm_path)
        kw = {"gguf_file": p.name} if p.suffix == ".gguf" else {}
        lm = AutoModelForCausalLM.from_pretrained(str(p.parent if kw else p), **kw)
        lm.resize_token_embeddings(len(tokenizer))
        return lm
    return Qwen2ForCausalLM(Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden, intermediate_size=cfg.intermediate,
        num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads, num_key_value_heads=cfg.kv_heads,
        max_position_embeddings=cfg.max_positions, tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id))


def real_tokenizer(cfg: GMLLMConfig):
    """The tokenizer of a real checkpoint, with our special tokens added."""
    from transformers import AutoTokenizer

    p = Path(cfg.lm_path)
    kw = {"gguf_file": p.name} if p.suffix == ".gguf" else {}
    tok = AutoTokenizer.from_pretrained(str(p.parent if kw else p), **kw)
    tok.add_special_tokens({"pad_token": PAD, "bos_token": BOS, "eos_token": EOS,
                            "additional_special_tokens": [DESCRIBE, PROMPT, SEP]})
    return tok


class GMLLM(nn.Module):
    def __init__(self, cfg: GMLLMConfig, tokenizer, lm=None):
        super().__init__()
        if cfg.group_dim <= 0:
            raise ValueError("GMLLMConfig.group_dim must be set (the length of the groups' feature vectors)")
        missing = [t for t in SPECIAL if t not in tokenizer.get_vocab()]
        if missing:
            raise ValueError(f"the tokenizer lacks the special tokens {missing}")
        self.cfg, self.tokenizer = cfg, tokenizer
        torch.manual_seed(cfg.seed)
        self.lm = lm if lm is not None else build_lm(cfg, tokenizer)
        h = self.lm.config.hidden_size
        self.group_proj = nn.Sequential(nn.Linear(cfg.group_dim, h), nn.GELU(), nn.Linear(h, cfg.group_tokens * h))
        self.vision = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.GELU(),
                                    nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.GELU(),
                                    nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, cfg.image_tokens * h))
        self._ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL}

    @property
    def n_prefix(self) -> int:
        return self.cfg.group_tokens + self.cfg.image_tokens

    def prefix(self, group_x: torch.Tensor, image_x: torch.Tensor) -> torch.Tensor:
        """(B, group_tokens + image_tokens, hidden): the conditioning, as token embeddings."""
        b, h = group_x.shape[0], self.lm.config.hidden_size
        dtype = self.lm.get_input_embeddings().weight.dtype
        g = self.group_proj(group_x).view(b, self.cfg.group_tokens, h)
        v = self.vision(image_x).view(b, self.cfg.image_tokens, h)
        return torch.cat([g, v], 1).to(dtype)

    # -- text <-> ids ------------------------------------------------------------------------------
    def context_ids(self, task: str, title: str) -> list[int]:
        """<bos> <task> title <sep>: what the completion is conditioned on (besides the prefix)."""
        try:
            task_id = self._ids[TASKS[task]]
        except KeyError:
            raise ValueError(f"unknown task {task!r}; known: {sorted(TASKS)}") from None
        return [self._ids[BOS], task_id, *self.tokenizer.encode(title, add_special_tokens=False), self._ids[SEP]]

    def encode(self, tasks, titles, completions) -> dict[str, torch.Tensor]:
        """Right-padded input_ids, attention_mask and completion_mask (1 on completion tokens and <eos>)."""
        rows, masks = [], []
        for task, title, comp in zip(tasks, titles, completions, strict=True):
            ctx = self.context_ids(task, title)
            out = [*self.tokenizer.encode(comp, add_special_tokens=False), self._ids[EOS]]
            rows.append(ctx + out)
            masks.append([0] * len(ctx) + [1] * len(out))
        n = max(map(len, rows))
        pad = self._ids[PAD]
        return {"input_ids": torch.tensor([r + [pad] * (n - len(r)) for r in rows]),
                "attention_mask": torch.tensor([[1] * len(r) + [0] * (n - len(r)) for r in rows]),
                "completion_mask": torch.tensor([m + [0] * (n - len(m)) for m in masks])}

    # -- forward -----------------------------------------------------------------------------------
    def forward(self, group_x, image_x, input_ids, attention_mask) -> torch.Tensor:
        """Logits of the text positions (B, T, V); the prefix positions are dropped."""
        pre = self.prefix(group_x, image_x)
        emb = torch.cat([pre, self.lm.get_input_embeddings()(input_ids)], 1)
        am = torch.cat([torch.ones(pre.shape[:2], dtype=attention_mask.dtype), attention_mask], 1)
        return self.lm(inputs_embeds=emb, attention_mask=am, use_cache=False).logits[:, pre.shape[1]:]

    def sequence_logps(self, group_x, image_x, batch: dict) -> torch.Tensor:
        """log pi(completion | prefix, context) per sequence: (B,)."""
        logits = self(group_x, image_x, batch["input_ids"], batch["attention_mask"])
        return completion_logps(logits, batch["input_ids"], batch["completion_mask"])

    @torch.no_grad()
    def generate(self, group_x, image_x, titles, task: str = "prompt", n: int = 1, do_sample: bool = False,
                 temperature: float = 1.0, seed: int = 0) -> list[list[str]]:
        """For each example, ``n`` completions (greedy, or sampled with a fixed seed: reproducible)."""
        was_training = self.training
        self.eval()
        torch.manual_seed(seed)
        pre = self.prefix(group_x, image_x)
        out = []
        embed = self.lm.get_input_embeddings()
        for i, title in enumerate(titles):
            ctx = torch.tensor([self.context_ids(task, title)])
            emb = torch.cat([pre[i:i + 1], embed(ctx)], 1).expand(n, -1, -1)
            ids = self.lm.generate(inputs_embeds=emb, attention_mask=torch.ones(emb.shape[:2], dtype=torch.long),
                                   max_new_tokens=self.cfg.max_new_tokens, do_sample=do_sample,
                                   temperature=temperature if do_sample else None, top_k=None, top_p=None,
                                   pad_token_id=self._ids[PAD], eos_token_id=self._ids[EOS], bos_token_id=self._ids[BOS])
            out.append([self.tokenizer.decode(r, skip_special_tokens=True).strip() for r in ids])
        self.train(was_training)
        return out

    # -- one save/load path (osmf_models.common) ----------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = save_checkpoint(self, {"config": self.cfg.to_dict()}, path)
        self.tokenizer.save_pretrained(str(Path(path) / "tokenizer"))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "GMLLM":
        meta, state = load_checkpoint(path, "G-MLLM", "train one with `osmf train gmllm --run-date D`")
        cfg = GMLLMConfig.from_dict(meta["config"])
        model = cls(cfg, load_tokenizer(Path(path) / "tokenizer"))
        model.load_state_dict(state)
        return model.eval()
