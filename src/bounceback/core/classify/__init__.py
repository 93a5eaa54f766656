"""Classification: facts in, a reason with the id of the rule that decided it out."""

from bounceback.core.classify.engine import classify, explain_order

__all__ = ["classify", "explain_order"]
