"""Running experiments: the registry of claims, configs and their rules, seeding, run folders, signals, progress
bars, the runner that writes result.json, and the result.json schema. Nothing here imports `core.report`."""
