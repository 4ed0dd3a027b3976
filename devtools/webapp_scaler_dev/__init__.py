"""webapp-scaler's dev tools: the local control plane, the demo, the trace simulator and the generators.

Never installed into the operator image or a VM: this distribution may import the operator and the
session agent, neither of them imports it.
"""
