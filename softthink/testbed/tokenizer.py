"""The testbed tokenizer: a small word-level vocabulary saved in Hugging Face format.

Digits are single tokens (``"7"``, or ``" 7"`` when a space precedes them), keywords and operators are one token
each, and ``<think>`` / ``</think>`` are single (non-special) added tokens, as in Qwen3, so ``decode`` keeps them.
A pre-tokenizer splits text into these pieces and a ``Fuse`` decoder concatenates them back, so
``decode(encode(text)) == text`` for every text over the vocabulary. Anything else becomes ``<unk>``.

The chat template renders ``<s>Q: {question}\\nA:``; the model then writes ``<think>`` itself as its first token.
"""

from __future__ import annotations

from pathlib import Path

from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>"]
THINK_TOKENS = ["<think>", "</think>"]
WORDS = ["Q", "A", "solve", "add", "x", "low", "high", "yes", "no"]
SYMBOLS = ["+", "-", "*", "=", "(", " (", ")", ":", "\n", "\\boxed{", "}", ".", ",", " "]
DIGITS = [str(d) for d in range(10)]

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ 'Q: ' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ 'A:' + message['content'] + eos_token + '\n' }}"
    "{% else %}{{ raise_exception('the testbed chat template knows the roles user and assistant, got ' "
    "+ message['role']) }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'A:' }}{% endif %}"
)

# One piece per token: an optional space before a digit, word or '(', then the boxed marker, newline, any other char.
_PRETOKENIZE = r" ?[0-9]| ?[A-Za-z]+| ?\(|\\boxed\{|\n|[^A-Za-z0-9]"


def vocabulary() -> list[str]:
    """All tokens in id order: specials, think markers, digits, words (bare and with a leading space), symbols."""
    spaced = [" " + t for t in DIGITS + WORDS]
    return SPECIAL_TOKENS + THINK_TOKENS + DIGITS + WORDS + spaced + SYMBOLS


def build_tokenizer() -> PreTrainedTokenizerFast:
    """The testbed tokenizer (vocabulary size ``len(vocabulary())``), with the chat template set."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    vocab = {tok: i for i, tok in enumerate(vocabulary())}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(_PRETOKENIZE), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    backend.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TOKENS])
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        clean_up_tokenization_spaces=False,
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def save_tokenizer(directory: str | Path) -> PreTrainedTokenizerFast:
    """Build the tokenizer and save it (``tokenizer.json``, ``tokenizer_config.json``, chat template)."""
    tok = build_tokenizer()
    tok.save_pretrained(str(directory))
    return tok
