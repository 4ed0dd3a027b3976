"""KubeVirt + CDI emulator: plays their part against a real kube-apiserver where KubeVirt cannot run."""
