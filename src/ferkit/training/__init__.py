"""Training, the only package built on torch: config, networks, augmentation, optimisation,
distillation, warm start, run folders and the loop."""
