"""A deterministic, seeded simulation of a VM fleet serving sessions from a real traffic trace, and the
baseline autoscalers we compare the engine with. Nothing here is imported by the operator."""
