"""softthink inside other tools, without forks.

- `softthink.integrations.transformers`: ``model.generate(..., custom_generate=generate, mode="soft")`` and the
  Hub ``custom_generate/`` folder (`softthink.integrations.hub_folder`, ``softthink export custom-generate DIR``).
- `softthink.integrations.lm_eval`: the ``softthink`` model of lm-evaluation-harness (optional extra).

Submodules are imported on demand so that ``import softthink`` never needs lm-eval.
"""
