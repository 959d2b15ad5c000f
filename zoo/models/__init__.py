"""zoo.models: filled by the family issues."""
