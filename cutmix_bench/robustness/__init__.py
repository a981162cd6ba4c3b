"""Pure functions behind the robustness evaluations (occlusion, in-between class, adversarial):
input construction and attacks, kept apart from the `Evaluation` classes that batch and score them."""
