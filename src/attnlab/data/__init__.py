"""Readers that several tasks share: packaged files, image files, mnist5k's digits, video decoding, per-sample
seeding. Each task's data sets (its registry) live in its own folder under ``attnlab.tasks``."""
