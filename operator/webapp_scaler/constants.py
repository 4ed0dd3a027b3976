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
GATEWAY_GROUP, GATEWAY_VERSION = "gateway.networking.k8s.io", "v1"  # Gateway API: HTTPRoute, Gateway, …
HTTPROUTE_CRD = f"httproutes.{GATEWAY_GROUP}"

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
    # kstatus's abnormal-true pair (sigs.k8s.io/cli-utils pkg/kstatus): never both True at once
    RECONCILING = "Reconciling"  # True while the operator works towards the spec (VMs cloning, booting, draining)
    STALLED = "Stalled"  # True when the operator cannot make progress without a person
    DRAIN_READY = "DrainReady"  # a drain in the configured mode keeps the draining VMs' users
    ROUTE_READY = "RouteReady"  # the HTTPRoute of spec.route is applied as asked (only with spec.route)


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
    # what needs a person (Stalled; also InvalidSpec, GoldenImageNotFound, GoldenImageFailed,
    # CloneNotAuthorized and FailedCreate, a VM create the apiserver refused)
    NAME_CONFLICT = "NameConflict"  # objects of another owner in the way
    NOT_STALLED = "NotStalled"
    # the work towards the spec (Reconciling; also GoldenImageNotReady while the image imports)
    VMS_CHANGING = "VMsChanging"  # VMs cloning, booting, starting, draining or failed, or the round acted
    VMS_SETTLED = "VMsSettled"
    BLOCKED = "Blocked"  # Reconciling False because Stalled is True
    # the drain mode against the agents and the load balancer (DrainReady)
    DRAIN_MODE_SUPPORTED = "DrainModeSupported"
    DRAIN_DISABLED = "DrainDisabled"
    DRAIN_MODE_UNSUPPORTED = "DrainModeUnsupported"  # an agent answered 409 to the mode; also its Event
    DRAIN_LOSES_SESSIONS = "DrainLosesSessions"  # Readiness behind a load balancer that drops not-ready VMs
    RETRY_NOT_IMPLEMENTED = "RetryNotImplemented"  # RefuseNewSessions behind one that does not retry a 503
    # the HTTPRoute (RouteReady); a name conflict there is NameConflict, as for the Service and the Ingress
    ROUTE_APPLIED = "RouteApplied"
    GATEWAY_API_NOT_INSTALLED = "GatewayAPINotInstalled"
    SESSION_PERSISTENCE_UNSUPPORTED = "SessionPersistenceUnsupported"
    ROUTE_REJECTED = "RouteRejected"  # the apiserver refused the HTTPRoute (e.g. a bad pass-through filter)
    # a step of the round that failed (Stalled when the apiserver refused our object, else Ready False)
    GOLDEN_IMAGE_REJECTED = "GoldenImageRejected"
    GOLDEN_IMAGE_READ_FAILED = "GoldenImageReadFailed"
    SERVICE_REJECTED = "ServiceRejected"
    SERVICE_APPLY_FAILED = "ServiceApplyFailed"
    INGRESS_REJECTED = "IngressRejected"
    INGRESS_APPLY_FAILED = "IngressApplyFailed"
    HTTPROUTE_REJECTED = "HTTPRouteRejected"
    HTTPROUTE_APPLY_FAILED = "HTTPRouteApplyFailed"
    DRAIN_TOKEN_REJECTED = "DrainTokenRejected"
    DRAIN_TOKEN_FAILED = "DrainTokenFailed"
    SCALE_ACTION_REJECTED = "ScaleActionRejected"
    SCALE_ACTION_FAILED = "ScaleActionFailed"
    STATUS_PATCH_REJECTED = "StatusPatchRejected"
    STATUS_PATCH_FAILED = "StatusPatchFailed"
    # the fleet (Ready)
    ALL_READY = "AllVMsReady"
    VMS_NOT_READY = "VMsNotReady"
    # Events of actions
    SCALED_UP = "ScaledUp"
    WARM_POOL_FILLED = "WarmPoolFilled"
    DRAINING = "Draining"
    DELETED = "DeletedDrainedVM"
    CREATE_FAILED = "FailedCreate"
    # hand edits (docs/operator.md "Hand edits")
    VM_STOPPED = "VMStopped"  # a VM stopped by a person: not counted, left alone
    REPAIRED = "Repaired"  # a Service, Ingress or HTTPRoute of ours deleted by hand was made again
    DRAIN_FAILED = "FailedDrain"
