"""The testbed tokenizer: exact round trip, single-token think markers, chat template, HF save/load."""

from transformers import AutoTokenizer

from softthink.testbed.tasks import load_problems
from softthink.testbed.tokenizer import build_tokenizer, vocabulary
from softthink.testbed.train import training_text


def test_round_trip_and_no_unknowns(tmp_path):
    build_tokenizer().save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    assert len(tok) == len(vocabulary())
    for p in load_problems("test", 50):
        prompt, completion = training_text(p, tok)
        ids = tok(prompt + completion, add_special_tokens=False)["input_ids"]
        assert tok.unk_token_id not in ids
        assert tok.decode(ids) == prompt + completion


def test_think_markers_are_single_kept_tokens():
    tok = build_tokenizer()
    for marker in ("<think>", "</think>"):
        ids = tok.encode(f"1+2=3{marker}4", add_special_tokens=False)
        assert tok.convert_tokens_to_ids(marker) in ids and len(tok.encode(marker, add_special_tokens=False)) == 1
    ids = tok.encode("<think>5</think>\\boxed{5}</s>", add_special_tokens=False)
    assert tok.decode(ids, skip_special_tokens=True) == "<think>5</think>\\boxed{5}"


def test_chat_template_prompt_is_a_prefix_of_the_training_text():
    tok = build_tokenizer()
    p = load_problems("test", 1)[0]
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": p["question"]}], tokenize=False, add_generation_prompt=True
    )
    assert prompt == f"<s>Q: {p['question']}\nA:"
    prompt_ids = tok.apply_chat_template(
        [{"role": "user", "content": p["question"]}], tokenize=True, add_generation_prompt=True, return_dict=False
    )
    full = tok(prompt + p["solution"] + tok.eos_token, add_special_tokens=False)["input_ids"]
    assert full[: len(prompt_ids)] == prompt_ids and full[len(prompt_ids)] == tok.convert_tokens_to_ids("<think>")
