"""Content policies: a reward model over context x content features plus an exploration rule with exact
probabilities, and the decision function that puts the guardrails in front of them."""
