"""The soft-input curriculum: hand-checked mixtures, the positions it replaces, off == plain training bit for bit,
exact resume, warm start and bad input."""

import pytest
import torch

from softthink.errors import SoftthinkConfigError
from softthink.testbed.curriculum import (
    MixtureFilters,
    curriculum_fraction,
    draw_soft_inputs,
    inputs_embeds,
    mixture_inputs,
    thinking_positions,
)
from softthink.testbed.tokenizer import build_tokenizer
from softthink.testbed.train import (
    STATE_FILE,
    TrainConfig,
    build_model,
    learning_rate,
    train,
    train_batches,
    warm_start,
)
from tests.testbed.test_train import TINY as TRAIN_TINY

# the training tests' tiny model, smaller still, with the step's micro-batch split exercised
TINY = dict(
    TRAIN_TINY,
    hidden_size=16,
    intermediate_size=32,
    max_steps=3,
    micro_batches=2,
    eval_interval=100,
    final_eval_problems=0,
)


def test_mixture_inputs_hand_computed():
    # probs 0.5, 0.3, 0.15, 0.05 (T = 1). top-p 0.8 keeps tokens 0 and 1 (mass before token 2 is 0.8, not < 0.8):
    # renormalised 0.625, 0.375. Gold token 2 at weight 0.5: fed 0.3125 E0 + 0.1875 E1 + 0.5 E2.
    logits = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    filters = MixtureFilters(temperature=1.0, top_k=0, top_p=0.8, min_p=0.0, max_topk=3)
    ids, weights = mixture_inputs(logits, torch.tensor([2]), filters, gold_weight=0.5)
    assert ids.tolist() == [[0, 1, 2, 2]]
    torch.testing.assert_close(weights, torch.tensor([[0.3125, 0.1875, 0.0, 0.5]]))
    # gold already kept: its two weights add up (0.25 * 0.625 + 0.75 = 0.90625 on token 0)
    ids, weights = mixture_inputs(logits, torch.tensor([0]), filters, gold_weight=0.75)
    dense = torch.zeros(1, 4).index_add_(1, ids[0], weights[0][None])
    torch.testing.assert_close(dense, torch.tensor([[0.90625, 0.09375, 0.0, 0.0]]))
    # temperature 0.5 squares and renormalises: 0.25, 0.09, ... -> the top-1 only under top_p 0.6
    sharp = MixtureFilters(temperature=0.5, top_k=0, top_p=0.6, min_p=0.0, max_topk=3)
    ids, weights = mixture_inputs(logits, torch.tensor([1]), sharp, gold_weight=0.5)
    dense = torch.zeros(1, 4).index_add_(1, ids[0], weights[0][None])
    torch.testing.assert_close(dense, torch.tensor([[0.5, 0.5, 0.0, 0.0]]))


def test_mixture_filters_come_from_the_decode_preset():
    assert MixtureFilters.from_preset("soft") == MixtureFilters(0.6, 30, 0.95, 0.001, 10)
    with pytest.raises(SoftthinkConfigError, match="nope"):
        MixtureFilters.from_preset("nope")


def test_thinking_positions_and_ramp():
    # prompt P P | <think>=4 a b </think>=5 c eos
    ids = torch.tensor([[1, 9, 4, 7, 8, 5, 6, 2]])
    labels = torch.tensor([[-100, -100, 4, 7, 8, 5, 6, 2]])
    assert thinking_positions(ids, labels, think_end_id=5).tolist() == [[0, 0, 1, 1, 1, 0, 0, 0]]
    assert [curriculum_fraction(0.5, 4, s) for s in range(6)] == [0.125, 0.25, 0.375, 0.5, 0.5, 0.5]
    assert curriculum_fraction(0.3, 0, 0) == 0.3


def test_soft_inputs_are_the_models_own_filtered_mixtures():
    tokenizer = build_tokenizer()
    model = build_model(TrainConfig(**TINY), tokenizer).double()
    batch = train_batches(TrainConfig(**TINY), 0, tokenizer)[0]
    filters, end = MixtureFilters.from_preset("soft"), tokenizer.convert_tokens_to_ids("</think>")
    soft = draw_soft_inputs(
        model, batch, fraction=1.0, filters=filters, gold_weight=0.5, think_end_id=end, generator=torch.Generator()
    )
    expected = thinking_positions(batch["input_ids"], batch["labels"], end)
    replaced = torch.zeros_like(expected)
    replaced[soft.rows, soft.cols] = True
    assert replaced.equal(expected) and expected.sum() > 20
    embeds = inputs_embeds(model, batch["input_ids"], soft)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    table = model.get_input_embeddings().weight
    for r, c in zip(*expected.nonzero(as_tuple=True)):
        # independently: the dense filtered distribution of the previous position, half gold
        p = torch.softmax(logits[r, c - 1] / 0.6, -1)
        order = p.argsort(descending=True)[:10]
        kept = p[order] / p[order].sum()  # top-k 30 then max_topk 10 over a 58-token vocabulary
        keep = (kept.cumsum(0) - kept < 0.95) & (kept >= 0.001 * kept[0])
        dense = torch.zeros_like(p).index_add_(0, order[keep], kept[keep] / kept[keep].sum())
        dense = 0.5 * dense + 0.5 * torch.nn.functional.one_hot(batch["input_ids"][r, c], len(p)).double()
        torch.testing.assert_close(embeds[r, c], dense @ table, rtol=1e-9, atol=1e-12)
    untouched = ~expected
    torch.testing.assert_close(embeds[untouched], table[batch["input_ids"][untouched]], rtol=0, atol=0)
    half = draw_soft_inputs(
        model,
        batch,
        fraction=0.5,
        filters=filters,
        gold_weight=0.5,
        think_end_id=end,
        generator=torch.Generator().manual_seed(0),
    )
    assert 0.3 * expected.sum() < len(half.rows) < 0.7 * expected.sum()


def plain_training(cfg: TrainConfig) -> dict:
    """The testbed's training loop without the curriculum, written out independently of `train`."""
    torch.set_num_threads(cfg.num_threads)
    tokenizer = build_tokenizer()
    model = build_model(cfg, tokenizer)
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in model.parameters() if p.dim() >= 2], "weight_decay": cfg.weight_decay},
            {"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0},
        ],
        lr=cfg.learning_rate,
        betas=(0.9, 0.95),
    )
    model.train()
    for step in range(cfg.max_steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step)
        batches = train_batches(cfg, step, tokenizer)
        total = sum(int((b["labels"] != -100).sum()) for b in batches)
        for b in batches:
            (model(**b).loss * int((b["labels"] != -100).sum()) / total).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return model.state_dict()


def trained_weights(cfg: TrainConfig, out) -> dict:
    from safetensors.torch import load_file

    train(cfg, out, progress=False)
    return load_file(str(out / "model.safetensors"))


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_curriculum_off_is_plain_training_bit_for_bit(tmp_path):
    reference = plain_training(TrainConfig(**TINY))
    assert_same_weights(trained_weights(TrainConfig(**TINY), tmp_path / "off"), reference)
    # the curriculum's other knobs do nothing while soft_fraction is 0
    knobs = TrainConfig(**TINY, soft_ramp_steps=2, soft_gold_weight=0.9, soft_filters="gated")
    assert_same_weights(trained_weights(knobs, tmp_path / "knobs"), reference)
    soft = trained_weights(TrainConfig(**TINY, soft_fraction=0.5), tmp_path / "soft")
    assert not torch.equal(soft["lm_head.weight"], reference["lm_head.weight"]), "the curriculum changes training"


def test_curriculum_run_resumes_exactly_and_logs_soft_positions(tmp_path):
    cfg = TrainConfig(**TINY, soft_fraction=0.6, soft_ramp_steps=2)
    straight = trained_weights(cfg, tmp_path / "straight")
    train(cfg, tmp_path / "resumed", stop_after_steps=1, progress=False)
    assert (tmp_path / "resumed" / STATE_FILE).is_file()
    log = train(cfg, tmp_path / "resumed", progress=False)
    from safetensors.torch import load_file

    assert_same_weights(load_file(str(tmp_path / "resumed" / "model.safetensors")), straight)
    positions = [r["soft_positions"] for r in log["records"]]
    assert len(positions) == 3 and all(p > 0 for p in positions)


def test_warm_start_loads_the_checkpoint(tmp_path):
    from safetensors.torch import load_file

    first = trained_weights(TrainConfig(**TINY), tmp_path / "first")
    tokenizer = build_tokenizer()
    model = build_model(TrainConfig(**TINY, seed=1), tokenizer)
    warm_start(model, str(tmp_path / "first"))
    assert_same_weights(model.state_dict(), first)
    # one step from the loaded weights differs from one step from a fresh initialisation
    warm = TrainConfig(**dict(TINY, max_steps=1), init_from=str(tmp_path / "first"))
    cold = TrainConfig(**dict(TINY, max_steps=1))
    train(warm, tmp_path / "warm", progress=False)
    train(cold, tmp_path / "cold", progress=False)
    warm_w, cold_w = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("warm", "cold"))
    assert not torch.equal(warm_w["lm_head.weight"], cold_w["lm_head.weight"])
    with pytest.raises(SoftthinkConfigError, match="do not fit the configured model"):
        warm_start(build_model(TrainConfig(**dict(TINY, hidden_size=8)), tokenizer), str(tmp_path / "first"))


@pytest.mark.parametrize(
    "override, message",
    [
        (dict(soft_fraction=1.5), r"train.soft_fraction must be a number in \[0, 1\], got 1.5"),
        (dict(soft_gold_weight=-0.1), r"train.soft_gold_weight must be a number in \[0, 1\]"),
        (dict(soft_ramp_steps=-1), "train.soft_ramp_steps must be >= 0"),
        (dict(soft_fraction=0.5, soft_filters="nope"), "nope"),
        (dict(init_from="/nonexistent/ckpt"), "train.init_from: /nonexistent/ckpt has no model.safetensors"),
    ],
)
def test_curriculum_config_errors_name_the_field(override, message):
    with pytest.raises(SoftthinkConfigError, match=message):
        TrainConfig(**override)
    assert TrainConfig(init_from="testbed").init_from == "testbed"


def test_curriculum_fields_parse_from_the_command_line():
    from softthink.testbed.train import parse_overrides

    assert parse_overrides(["soft_fraction=0.25", "init_from=testbed", "soft_ramp_steps=10"]) == {
        "soft_fraction": 0.25,
        "init_from": "testbed",
        "soft_ramp_steps": 10,
    }
