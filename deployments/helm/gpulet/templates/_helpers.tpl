{{/*
Helpers of gpulet's chart. Object names are fixed (gpulet, gpulet-metrics, gpulet-resourceslices), as in
daemonset/: the cluster-scoped objects and the kubelet plugin directory allow one gpulet per cluster.
*/}}

{{/* Labels on every object's metadata: daemonset/'s, plus Helm's own. */}}
{{- define "gpulet.labels" -}}
app.kubernetes.io/name: gpulet
app.kubernetes.io/part-of: gpulet
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The agent's pod labels that selectors use (DaemonSet, Service, NetworkPolicy). Immutable once installed. */}}
{{- define "gpulet.selectorLabels" -}}
app.kubernetes.io/name: gpulet
app.kubernetes.io/component: kubelet-plugin
{{- end }}

{{/* The namespace of every namespaced object: the release's, never `default` unless allowed. */}}
{{- define "gpulet.namespace" -}}
{{- if and (eq .Release.Namespace "default") (not .Values.allowDefaultNamespace) -}}
{{- fail "gpulet must not be installed into the namespace `default`: apply daemonset/00-namespace.yaml and install with --namespace gpulet-system (or set allowDefaultNamespace=true)" -}}
{{- end -}}
{{- .Release.Namespace -}}
{{- end }}

{{/* The agent's ServiceAccount username, as the API server authenticates it. */}}
{{- define "gpulet.serviceAccountUser" -}}
system:serviceaccount:{{ include "gpulet.namespace" . }}:gpulet
{{- end }}

{{- define "gpulet.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* DeviceClass names: the GPU class is named as the driver; the MIG class mig.<driver without gpu.>. */}}
{{- define "gpulet.gpuClassName" -}}
{{ .Values.deviceClasses.gpu.name | default .Values.driverName }}
{{- end }}
{{- define "gpulet.migClassName" -}}
{{ .Values.deviceClasses.mig.name | default (printf "mig.%s" (trimPrefix "gpu." .Values.driverName)) }}
{{- end }}

{{/* The driver userspace source the agent runs with: driverUserspace, none with the mock backend (no driver). */}}
{{- define "gpulet.driverUserspace" -}}
{{- if eq .Values.backend "mock" }}none{{ else }}{{ .Values.driverUserspace }}{{ end -}}
{{- end }}
{{/* Does the agent read the driver's userspace under the driver root (discover, auto)? "true" or "". */}}
{{- define "gpulet.readsDriverRoot" -}}
{{- if has (include "gpulet.driverUserspace" .) (list "auto" "discover") }}true{{ end -}}
{{- end }}
{{/* Does the agent read the NVIDIA Container Toolkit's CDI specs (toolkit, auto)? "true" or "". */}}
{{- define "gpulet.readsToolkitSpecs" -}}
{{- if has (include "gpulet.driverUserspace" .) (list "auto" "toolkit") }}true{{ end -}}
{{- end }}

{{/*
A host path under the driver root: (list root path) -> the clean joined path. Fails on the host's `/`, which
would expose every file of the node (the kubelet's credentials, other pods' volumes) to the agent.
*/}}
{{- define "gpulet.hostPathUnder" -}}
{{- $p := clean (printf "%s/%s" (index . 0) (index . 1)) -}}
{{- if eq $p "/" -}}
{{- fail (printf "gpulet mounts no host `/`: %q under %q is the host's root" (index . 1) (index . 0)) -}}
{{- end -}}
{{- $p -}}
{{- end }}
