"""Token-entropy analysis: pure tensor functions (`entropy`) and plots (`plots`)."""
from softthink.analysis.entropy import entropy_from_logits, entropy_from_log_probs

__all__ = ["entropy_from_logits", "entropy_from_log_probs"]
