"""The benchmark: tasks × agents × seeds, and its statistics."""
