"""Out-of-distribution detection: score functions, exact metrics and OOD sets (used by evaluations/ood.py)."""
