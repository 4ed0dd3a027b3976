"""The scaling engine: pure functions from what the controller observed to what it should do.

No I/O, no kopf, no clock: "now" and every earlier observation are arguments, so the same inputs always
give the same decision, in the operator, in the simulator and in tests.
"""
