"""The scale benchmark: one operator replica against N WebAppScalings of M VMs each (`benchmarks/scale.py`).

The VMs are objects only (the emulator's light mode); one agent farm process serves every VM's session
agent on the VM's own loopback address; the load plan decides what each WebAppScaling's agents report.
"""
