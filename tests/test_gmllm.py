"""G-MLLM and Group-DPO on tiny configs: shapes, learning, conditioning that is real, save/load,
the Group-DPO loss against trl's DPO as the oracle, and LoRA training."""

import numpy as np
import pandas as pd
import pytest
import torch

from osmf_models.gmllm import GMLLM, GMLLMConfig
from osmf_models.gmllm.loss import completion_logps, lm_loss
from osmf_models.gmllm.tokenizer import train_tokenizer
from osmf_models.gmllm.train import pretrain
from osmf_models.group_dpo import GroupDPOConfig, group_dpo_loss
from osmf_models.group_dpo.train import train_group_dpo, with_lora

TEXTS = ["on a sunny tropical beach with blue sea and sand", "on a neon-lit cyberpunk city street at night",
         "on a lush green forest in morning light", "young urban shoppers, android, high activity",
         "older suburban buyers, ios, low activity", "red running shoe", "steel kettle"]


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(TEXTS * 2, 300)


def _examples():
    """Two groups of the same product that prefer different backgrounds."""
    return pd.DataFrame({"product_id": ["p1", "p1"], "group_id": [0, 1], "title": ["red running shoe"] * 2,
                         "description": [TEXTS[3], TEXTS[4]], "best_background": [TEXTS[0], TEXTS[1]],
                         "features": [np.array([1.0, 0, 0, 0]), np.array([0, 1.0, 0, 0])]})


def _tensors(n=2, size=16):
    torch.manual_seed(3)
    G = torch.eye(4)[:n]
    return G, torch.randn(1, 3, size, size).expand(n, -1, -1, -1).clone()


def test_shapes_and_prefix_conditioning(tok):
    model = GMLLM(GMLLMConfig.tiny(group_dim=4), tok)
    G, I = _tensors()
    b = model.encode(["prompt", "describe"], ["red running shoe"] * 2, [TEXTS[0], TEXTS[3]])
    logits = model(G, I, b["input_ids"], b["attention_mask"])
    assert logits.shape == (*b["input_ids"].shape, len(tok))
    assert model.prefix(G, I).shape == (2, model.n_prefix, model.lm.config.hidden_size)
    same_text = model.encode(["prompt"] * 2, ["red running shoe"] * 2, [TEXTS[0]] * 2)
    lp = model.sequence_logps(G, I, same_text)
    assert lp.shape == (2,) and (lp < 0).all()
    assert not torch.isclose(lp[0], lp[1])  # same text, other group: other likelihood


def test_every_trainable_parameter_changes_after_a_step(tok):
    model = GMLLM(GMLLMConfig.tiny(group_dim=4), tok)
    G, I = _tensors()
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    b = model.encode(["prompt", "describe"], ["red running shoe"] * 2, [TEXTS[0], TEXTS[3]])
    lm_loss(model(G, I, b["input_ids"], b["attention_mask"]), b["input_ids"], b["completion_mask"]).backward()
    opt.step()
    unchanged = [k for k, v in model.named_parameters() if torch.equal(v, before[k])]
    assert unchanged == []


def test_overfit_generation_reproduces_each_groups_text(tok, tmp_path):
    """Same product and title, two groups: after overfitting, greedy generation from each group's
    prefix writes that group's background and description, so the prefix really conditions."""
    cfg = GMLLMConfig.tiny(group_dim=4)
    cfg.epochs, cfg.lr = 150, 1e-2
    model = GMLLM(cfg, tok)
    ex = _examples()
    G, I = _tensors()
    metrics, curves = pretrain(model, ex, G, I)
    assert curves["loss"][-1] < 0.1 * curves["loss"][0]
    assert model.generate(G, I, list(ex.title)) == [[TEXTS[0]], [TEXTS[1]]]
    assert model.generate(G, I, list(ex.title), task="describe") == [[TEXTS[3]], [TEXTS[4]]]
    assert metrics["prompt_exact_match"] == 1.0
    # sampling is reproducible with a seed
    s1 = model.generate(G, I, list(ex.title), n=3, do_sample=True, temperature=2.0, seed=5)
    assert s1 == model.generate(G, I, list(ex.title), n=3, do_sample=True, temperature=2.0, seed=5)
    # save / load round trip is exact
    loaded = GMLLM.load(model.save(tmp_path / "gmllm"))
    b = model.encode(["prompt"] * 2, list(ex.title), list(ex.best_background))
    assert torch.equal(model.sequence_logps(G, I, b), loaded.sequence_logps(G, I, b))


def test_minibatch_epochs_stop_at_max_steps_and_shuffle_as_before():
    from osmf_models.common import minibatch_epochs

    capped = minibatch_epochs(10, 4, 5, 7, np.random.default_rng(0))
    assert len(capped) == 3 and [len(b) for b in capped] == [3, 3, 1]
    assert len(minibatch_epochs(10, 4, 5, 0, np.random.default_rng(0))) == 5
    # no cap: every epoch, one permutation each, the order an uncapped loop had
    rng = np.random.default_rng(0)
    full = minibatch_epochs(10, 4, 5, 0, np.random.default_rng(0))
    assert len(full) == 5
    for batches in full:
        assert np.array_equal(np.concatenate(batches), rng.permutation(10))


def test_pretraining_stops_after_max_steps(tok):
    cfg = GMLLMConfig.tiny(group_dim=4)
    cfg.epochs, cfg.max_steps = 50, 5  # one step per epoch (4 sequences, batch 16)
    metrics, curves = pretrain(GMLLM(cfg, tok), _examples(), *_tensors())
    assert metrics["steps"] == 5 and len(curves["loss"]) == 5


def test_group_dpo_loss_averages_within_then_across_groups():
    pc, pr = torch.tensor([1.0, 0.0, 2.0, -1.0]), torch.tensor([0.0, 0.5, 1.0, 0.0])
    rc, rr = torch.zeros(4), torch.zeros(4)
    g = torch.tensor([7, 7, 7, 9])
    per = -torch.nn.functional.logsigmoid(0.5 * ((pc - rc) - (pr - rr)))
    equal, stats = group_dpo_loss(pc, pr, rc, rr, g, beta=0.5, weighting="equal")
    assert torch.isclose(equal, (per[:3].mean() + per[3]) / 2)
    pooled, _ = group_dpo_loss(pc, pr, rc, rr, g, beta=0.5, weighting="pairs")
    assert torch.isclose(pooled, per.mean())
    assert stats["groups"] == 2 and stats["reward_accuracy"] == 0.5


def test_group_dpo_with_one_group_equals_trl_dpo(tok, tmp_path):
    """trl 1.16's DPOTrainer computes the sigmoid DPO loss of a collated batch; ours, on the same
    token ids with one group, must give the same number."""
    from datasets import Dataset
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from trl import DPOConfig, DPOTrainer

    def lm(seed):
        torch.manual_seed(seed)
        return Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                            num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                            pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id))

    policy, ref = lm(0), lm(1)
    data = Dataset.from_dict({"prompt": ["red running shoe", "steel kettle", "red running shoe"],
                              "chosen": [TEXTS[0], TEXTS[2], TEXTS[1]],
                              "rejected": [TEXTS[1], TEXTS[0], TEXTS[2] + " and more"]})
    beta = 0.3
    trainer = DPOTrainer(model=policy, ref_model=ref, train_dataset=data, processing_class=tok,
                         args=DPOConfig(output_dir=str(tmp_path), beta=beta, loss_type=["sigmoid"], report_to=[],
                                        per_device_train_batch_size=3, use_cpu=True, bf16=False))
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(3)])
    with torch.no_grad():
        trl_loss = float(trainer.compute_loss(trainer.model, dict(batch)))
        ids, am, cm = batch["input_ids"], batch["attention_mask"], batch["completion_mask"]
        lp = completion_logps(policy(input_ids=ids, attention_mask=am).logits, ids, cm)
        rp = completion_logps(ref(input_ids=ids, attention_mask=am).logits, ids, cm)
    n = len(data)
    ours, _ = group_dpo_loss(lp[:n], lp[n:], rp[:n], rp[n:], torch.zeros(n, dtype=torch.long), beta)
    assert abs(float(ours) - trl_loss) < 1e-5
    assert abs(trl_loss - float(np.log(2))) > 1e-3  # a real comparison, not two zero margins


def test_group_dpo_trains_lora_and_projector_and_learns_each_groups_preference(tok):
    cfg = GMLLMConfig.tiny(group_dim=4)
    cfg.epochs, cfg.lr = 40, 1e-2
    ref = GMLLM(cfg, tok)
    ex = _examples()
    G, I = _tensors()
    pretrain(ref, ex, G, I)
    # the two groups disagree: group 0 prefers forest over neon, group 1 neon over forest
    pairs = pd.DataFrame({"ex_row": [0, 1], "chosen": [TEXTS[2], TEXTS[1]], "rejected": [TEXTS[1], TEXTS[2]],
                          "source": "observed"})
    dcfg = GroupDPOConfig.tiny()
    policy = with_lora(ref, dcfg)
    trainable = {k for k, p in policy.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in k or k.startswith("group_proj") for k in trainable)
    dcfg.epochs, dcfg.lr = 30, 5e-3
    aligned, metrics, curves = train_group_dpo(ref, ex, pairs, G, I, dcfg)
    assert curves["loss"][-1] < curves["loss"][0]
    assert metrics["reward_accuracy"] == 1.0 and metrics["groups"] == 2
    b = ref.encode(["prompt"] * 4, list(ex.title) * 2, [TEXTS[2], TEXTS[1], TEXTS[1], TEXTS[2]])
    GG, II = torch.cat([G, G]), torch.cat([I, I])
    gain = (aligned.sequence_logps(GG, II, b) - ref.sequence_logps(GG, II, b)).detach()
    assert gain[0] > gain[2] and gain[1] > gain[3]  # each group moved toward its own chosen text
    assert not any("lora" in k for k in aligned.state_dict())  # adapters merged back


def test_target_pairs_put_each_groups_target_against_the_grms_worst_and_a_bad_source_is_named():
    from osmf_models.group_dpo.config import GroupDPOConfig
    from osmf_models.group_dpo.pairs import baseline_pairs, build_pairs, group_pairs
    from osmf_models.group_dpo.train import grm_pairs, target_pairs

    scores = np.array([[0.10, 0.30, 0.20, 0.05], [0.4, 0.1, 0.3, 0.2]])
    pairs = target_pairs(["c", "b"], ["a", "b", "c", "d"], scores, per_group=2)
    # row 0: its target "c" (not the GRM's best "b") against the GRM's two worst, "d" and "a";
    # row 1: its target "b" is the GRM's worst, so it is skipped as a rejected and "d", "c" follow
    assert pairs[["ex_row", "chosen", "rejected"]].values.tolist() == [[0, "c", "d"], [0, "c", "a"], [1, "b", "d"], [1, "b", "c"]]
    assert set(pairs.source) == {"target"}
    # with source target, Group-DPO takes the target pairs, the plain-DPO baseline the product-level
    # ones; with another source both take every pair
    both = pd.concat([grm_pairs(["a", "b", "c", "d"], scores, 1, 0.01), pairs], ignore_index=True)
    assert group_pairs(both, "target").values.tolist() == pairs.values.tolist()
    assert set(baseline_pairs(both).source) == {"grm"} and len(baseline_pairs(both)) == 2
    assert len(group_pairs(baseline_pairs(both), "both")) == 2
    with pytest.raises(ValueError, match="best_background"):
        build_pairs(pd.DataFrame({"product_id": ["p"]}), {}, GroupDPOConfig(pair_source="target"), None, {}, None)
    with pytest.raises(ValueError, match="pair_source must be one of"):
        GroupDPOConfig(pair_source="targets")


def test_pair_mining_audience_features_and_prompt_parts():
    from osmf_models.gmllm.data import background_of, full_prompt
    from osmf_models.group_dpo.train import audience_features, grm_pairs

    scores = np.array([[0.10, 0.30, 0.20, 0.295], [0.2, 0.2, 0.2, 0.2]])
    pairs = grm_pairs(["a", "b", "c", "d"], scores, per_group=2, margin=0.01)
    # row 0: best "b" against the two worst ("a", "c"); "d" is within the margin; row 1: no pair
    assert pairs[["ex_row", "chosen", "rejected"]].values.tolist() == [[0, "b", "a"], [0, "b", "c"]]
    ex = pd.DataFrame({"product_id": ["p", "p", "q"], "features": [np.array([1.0, 0]), np.array([0, 1.0]), np.array([2.0, 2])]})
    aud = audience_features(ex, np.array([3.0, 1.0, 5.0])).numpy()
    assert np.allclose(aud, [[0.75, 0.25], [0.75, 0.25], [2, 2]])  # size-weighted per product, same for its groups
    assert background_of("Red Shoe on a beach, hd", "Red Shoe") == "on a beach, hd"
    assert full_prompt("Red Shoe", "on a beach, hd") == "Red Shoe on a beach, hd"
