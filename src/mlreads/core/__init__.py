"""Shared machinery. `core` knows no paper: papers import it, never the other way round.

Four rooms, whose imports run one way (tests/test_layout.py checks it):
    run/     experiments as declarations, the plan and the runner, verdicts, configs, run folders, signals
    train/   fit(): schedules, parameter groups, checkpoints and resume, DDP (imports run/, never report/)
    report/  the static report, the results ledger, `mlreads show`, docs/claims.md (reads what run/ writes)
    nn/      model helpers: hook points, decoding, next-token loss, activations, offline from_hf loading
Beside them: data/ (the datasets, offline) and the leaves every room may import: errors, fields (the rules a config
field declares), fmt, stats, papers (the reading list), figures, tables, shapes, memory.
"""
