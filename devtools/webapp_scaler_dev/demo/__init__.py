"""`webapp-scaler-dev demo`: the whole product on one machine, watched live.

A real control plane, emulated KubeVirt/CDI with the sample web shop in every VM, the operator, HAProxy
following the Service's EndpointSlices with drain support, and simulated shoppers going through it.
"""
