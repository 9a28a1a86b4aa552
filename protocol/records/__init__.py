"""Record batches (magic v2) and legacy message sets (magic 0/1)."""
