"""Fault injection against the demo stack: the operator SIGKILLed at seeded moments (`crash`), the control
plane stopped and restarted under it (`outage`), and the invariants checked all along (`invariants`).
docs/reliability.md has the figures and the commands."""
