"""Tasks: one per model family, owning model(s), loss composition, metrics and steps."""
