"""zoo.losses: filled by the family issues."""
