"""The Hugging Face Hub ``custom_generate`` folder layout for softthink, written to a local directory.

    DIR/README.md                          model-card front matter with the ``custom_generate`` tag
    DIR/custom_generate/generate.py        ``generate`` = `softthink.integrations.transformers.hub_generate`
    DIR/custom_generate/requirements.txt   ``softthink`` (transformers installs it after the trust check)

Load it with ``model.generate(**inputs, custom_generate="DIR", trust_remote_code=True, ...)``; DIR can also be
uploaded as a Hub repo. The Callable route and this local folder are the recommended ones (see
docs/integrations.md): some transformers versions write a remote ``generate.py`` to disk before the trust check.
"""

from __future__ import annotations

from pathlib import Path

import softthink
from softthink.errors import SoftthinkInputError

GENERATE_PY = '''"""softthink (Soft Thinking and other latent-reasoning decode modes) as a transformers custom_generate.

All the code lives in the softthink package (requirements.txt); this file only re-exports its entry point.
"""
from softthink.integrations.transformers import hub_generate as generate  # noqa: F401
'''

README = """---
library_name: transformers
tags:
  - custom_generate
---

# softthink custom_generate

Latent-reasoning decoding (Soft Thinking, entropy-gated soft thinking, Mixture of Inputs, SwiReasoning, ...)
through `model.generate`, decoded by [softthink](https://pypi.org/project/softthink/) {version}.

```python
out = model.generate(**inputs, custom_generate="{where}", trust_remote_code=True,
                     softthink_tokenizer=tokenizer, mode="soft", max_new_tokens=256,
                     return_dict_in_generate=True, output_scores=True)
out.sequences, out.scores, out.generations[0].trace
```

Arguments besides GenerationConfig's: `mode`, `softthink_config` (a DecodeConfig dict or preset name),
`think_end`, `max_topk`, `max_think_tokens`, `cold_stop_entropy`, `entropy_threshold`, `seed`,
`softthink_tokenizer`. Honoured GenerationConfig fields: max_new_tokens / max_length, do_sample, temperature,
top_k, top_p, min_p, eos_token_id, pad_token_id, return_dict_in_generate, output_scores, output_logits; user
stopping criteria are applied to the generated tokens. Other logits processors and beams raise an error.

Prefer `custom_generate=softthink.integrations.transformers.generate` (the Callable) or a local copy of this
folder: some transformers versions write a remote `generate.py` to disk before checking `trust_remote_code`.
"""


def write_custom_generate(directory: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Write the custom_generate folder layout into ``directory``; returns the files written.

    Existing files are kept unless ``overwrite`` (then an existing softthink export is replaced).
    """
    root = Path(directory)
    files = {
        root / "custom_generate" / "generate.py": GENERATE_PY,
        root / "custom_generate" / "requirements.txt": f"softthink>={softthink.__version__}\n",
        root / "README.md": README.format(version=softthink.__version__, where=str(root)),
    }
    existing = [p for p in files if p.exists()]
    if existing and not overwrite:
        raise SoftthinkInputError(
            f"{', '.join(map(str, existing))} already exist; pass overwrite=True "
            "(--overwrite on the command line) to replace them, or pick an empty directory."
        )
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(files)
