"""Names shared by every layer: API coordinates, labels, annotations, condition types and reasons."""

from __future__ import annotations

from enum import StrEnum

GROUP = "webappscaler.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "WebAppScaling"
PLURAL = "webappscalings"

KUBEVIRT_GROUP, KUBEVIRT_VERSION = "kubevirt.io", "v1"
CDI_GROUP, CDI_VERSION = "cdi.kubevirt.io", "v1beta1"

FIELD_MANAGER = "webapp-scaler"

# Labels. The scaling label is copied by KubeVirt from the VM template to the VMI and its pod, so the
# Service, the /scale selector and our own lists all select on it.
LABEL_SCALING = f"{GROUP}/scaling"
LABEL_VM = f"{GROUP}/vm"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_PART_OF = "app.kubernetes.io/part-of"
MANAGED_BY = "webapp-scaler"

# Each VM's own drain token reaches its guest as a Secret volume (a disk KubeVirt attaches) of this name;
# the agent reads `<mount>/token` (sidecar/cloud-init/session-agent.yaml mounts it).
DRAIN_TOKEN_VOLUME = "webappscaler-drain-token"
DRAIN_TOKEN_KEY = "token"

# Annotations on VMs: restart-safe state lives here, never only in the operator's memory.
ANNOTATION_DRAINING_SINCE = f"{GROUP}/draining-since"  # RFC 3339; a restarted operator continues the drain
ANNOTATION_PROTECTED = f"{GROUP}/protected"  # "true": never chosen for scale-in
ANNOTATION_WARM = f"{GROUP}/warm"  # "true": a pre-cloned stopped VM of the warm pool
ANNOTATION_STARTED_AT = f"{GROUP}/started-at"  # when a warm VM was started (for boot-time measurement)


class ConditionType(StrEnum):
    READY = "Ready"
    SCALING = "Scaling"
    METRICS_AVAILABLE = "MetricsAvailable"
    GOLDEN_IMAGE_READY = "GoldenImageReady"
    STALLED = "Stalled"  # kstatus: True means the operator cannot make progress without a person


class Reason(StrEnum):
    """Every condition and Event reason, one vocabulary: the engine's and the operator's. Scaling reasons
    reuse HPA's words (pkg/controller/podautoscaler) where HPA has one."""

    # the engine's decision (the Scaling condition)
    DESIRED_WITHIN_RANGE = "DesiredWithinRange"
    SCALE_UP_STABILIZED = "ScaleUpStabilized"
    SCALE_DOWN_STABILIZED = "ScaleDownStabilized"
    SCALE_UP_LIMIT = "ScaleUpLimit"
    SCALE_DOWN_LIMIT = "ScaleDownLimit"
    TOO_MANY_REPLICAS = "TooManyReplicas"
    TOO_FEW_REPLICAS = "TooFewReplicas"
    WITHIN_TOLERANCE = "WithinTolerance"
    FAILED_GET_METRICS = "FailedGetSessionMetrics"  # also MetricsAvailable=False when no agent answered
    PAUSED = "Paused"
    EXTERNAL = "ExternalDesired"
    INVALID_SPEC = "InvalidSpec"
    # the golden image (GoldenImageReady)
    GOLDEN_IMAGE_READY = "GoldenImageReady"
    GOLDEN_IMAGE_NOT_FOUND = "GoldenImageNotFound"
    GOLDEN_IMAGE_NOT_READY = "GoldenImageNotReady"
    GOLDEN_IMAGE_FAILED = "GoldenImageFailed"
    CLONE_NOT_AUTHORIZED = "CloneNotAuthorized"
    # the agents (MetricsAvailable)
    METRICS_OK = "ValidMetricFound"
    UNTRUSTED_ADDRESS = "UntrustedAddress"
    NO_READY_VMS = "NoReadyVMs"
    # objects of another owner in the way (Stalled)
    NAME_CONFLICT = "NameConflict"
    NO_CONFLICT = "NoConflict"
    # the fleet (Ready)
    ALL_READY = "AllVMsReady"
    VMS_NOT_READY = "VMsNotReady"
    # Events of actions
    SCALED_UP = "ScaledUp"
    WARM_POOL_FILLED = "WarmPoolFilled"
    DRAINING = "Draining"
    DELETED = "DeletedDrainedVM"
    CREATE_FAILED = "FailedCreate"
    DRAIN_FAILED = "FailedDrain"
