"""Training: the pure-torch loop, the Ray Train worker and driver, restoring trained runs."""
