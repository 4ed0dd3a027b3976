{{/*
The release's name for its objects: "webapp-scaler" unless overridden (fullnameOverride), or
"<release>-webapp-scaler" when the release has another name.
*/}}
{{- define "webapp-scaler.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "webapp-scaler.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "webapp-scaler.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The labels every object of the release carries. */}}
{{- define "webapp-scaler.labels" -}}
helm.sh/chart: {{ include "webapp-scaler.chart" . }}
app.kubernetes.io/name: {{ include "webapp-scaler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: webapp-scaler
{{- end -}}

{{/* The operator pod's selector: stable across upgrades (a Deployment's selector is immutable). */}}
{{- define "webapp-scaler.selectorLabels" -}}
app.kubernetes.io/name: {{ include "webapp-scaler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "webapp-scaler.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "webapp-scaler.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "webapp-scaler.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
Render the Kubernetes objects of a file in files/ (one or more YAML documents) as they are, adding the
release's labels and the given annotations. The file is parsed, never edited: the chart's copy stays
byte-equal to its source in the repository (devtools/webapp_scaler_dev/generate/chart_files.py).
Call: include "webapp-scaler.objectsFromFile" (dict "root" $ "path" "files/x.yaml" "annotations" (dict))
*/}}
{{- define "webapp-scaler.objectsFromFile" -}}
{{- $root := .root -}}
{{- $content := $root.Files.Get .path -}}
{{- if not $content -}}
{{- fail (printf "the chart has no %s: run python -m webapp_scaler_dev.generate.chart_files" .path) -}}
{{- end -}}
{{- $labels := include "webapp-scaler.labels" $root | fromYaml -}}
{{- range $document := regexSplit "(?m)^---[ \t]*$" $content -1 -}}
{{- $object := fromYaml $document -}}
{{- if hasKey $object "Error" -}}
{{- fail (printf "%s: %s" $.path $object.Error) -}}
{{- end -}}
{{- if $object }}
{{- $metadata := $object.metadata -}}
{{- $_ := set $metadata "labels" (merge (deepCopy $labels) (default (dict) $metadata.labels)) -}}
{{- $annotations := merge (deepCopy $.annotations) (default (dict) $metadata.annotations) -}}
{{- if $annotations -}}
{{- $_ := set $metadata "annotations" $annotations -}}
{{- end }}
---
{{ toYaml $object }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
What the operator may do in a namespace it watches: the namespaced rules of manifests/default/rbac.yaml
(docs/rbac.md explains each), used by the ClusterRole (the whole cluster) and by the Role of each watched
namespace. tests/unit/test_chart.py checks they are those of manifests/default/rbac.yaml.
*/}}
{{- define "webapp-scaler.namespacedRules" -}}
# its own resource: watch it, keep kopf's finalizer/annotations, write status
- apiGroups: [webappscaler.io]
  resources: [webappscalings]
  verbs: [get, list, watch, patch, update]
- apiGroups: [webappscaler.io]
  resources: [webappscalings/status]
  verbs: [get, patch, update]
# the VMs it clones, starts, drains and deletes
- apiGroups: [kubevirt.io]
  resources: [virtualmachines]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [kubevirt.io]
  resources: [virtualmachineinstances]
  verbs: [get, list, watch]
# virt-launcher pods: a VMI's address is trusted only when its pod has it (docs/security.md)
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
# clone progress of each VM's root disk, and the golden image's state
- apiGroups: [cdi.kubevirt.io]
  resources: [datavolumes, datasources]
  verbs: [get, list, watch]
# CDI's clone authorization: cloning a golden image needs this in the golden image's namespace
- apiGroups: [cdi.kubevirt.io]
  resources: [datavolumes/source]
  verbs: [create]
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get]
# the load balancer in front of the VMs (server-side apply creates or updates them)
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch, update]
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, list, watch, create, patch, update, delete]
# the Gateway API route of spec.route (server-side apply; deleted when spec.route goes)
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, watch, create, patch, delete]
# drain tokens: each VM's own, or the Secret that spec.sessions.agent.drainTokenSecretRef names
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}

{{/*
The rules on cluster-scoped resources (and the Gateway rule, whose GatewayClasses are cluster-scoped):
granted cluster-wide even when the operator watches a list of namespaces.
*/}}
{{- define "webapp-scaler.clusterRules" -}}
# a route's Gateways and their GatewayClasses: which controller serves them, and how it treats a drain
- apiGroups: [gateway.networking.k8s.io]
  resources: [gateways, gatewayclasses]
  verbs: [get]
# checking datavolumes/source in a golden image's namespace before cloning
- apiGroups: [authorization.k8s.io]
  resources: [selfsubjectaccessreviews]
  verbs: [create]
# kopf: discovers the resources it serves; get: what the installed HTTPRoute CRD serves
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [get, list, watch]
# kopf: notices the watched namespaces being created or deleted
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- end -}}

{{/*
The leader election Lease in the release's namespace: read, create and renew it (the operator never lists,
watches or deletes Leases), and post "became leader" / "lost leadership" Events on it.
tests/unit/test_chart.py checks they are those of manifests/default/rbac.yaml.
*/}}
{{- define "webapp-scaler.leaderElectionRules" -}}
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, create, update]
# "became leader" / "lost leadership" Events on the Lease
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}

{{/* The operator's command line. */}}
{{- define "webapp-scaler.args" -}}
- operator
{{- if .Values.watchNamespaces }}
{{- range .Values.watchNamespaces }}
- --namespace={{ . }}
{{- end }}
{{- else }}
- --all-namespaces
{{- end }}
{{- if not .Values.leaderElection.enabled }}
- --standalone
{{- end }}
- --log-format={{ .Values.logFormat }}
- --metrics-port={{ .Values.metrics.port }}
- --liveness=http://0.0.0.0:{{ .Values.livenessPort }}/healthz
- --lease-name={{ default (include "webapp-scaler.fullname" .) .Values.leaderElection.leaseName }}
{{- if .Values.leaderElection.enabled }}
- --lease-duration={{ .Values.leaderElection.leaseDuration }}
- --renew-deadline={{ .Values.leaderElection.renewDeadline }}
- --retry-period={{ .Values.leaderElection.retryPeriod }}
{{- end }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}
