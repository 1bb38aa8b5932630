{{/* Labels of the object named by the argument. */}}
{{- define "weft.labels" -}}
app.kubernetes.io/name: {{ . }}
app.kubernetes.io/part-of: weft
{{- end }}

{{/* The image of every container. */}}
{{- define "weft.image" -}}
{{- .Values.image | default (printf "weft.dev/weft:%s" .Chart.AppVersion) -}}
{{- end }}

{{/* Checks the values once. */}}
{{- define "weft.validate" -}}
{{- if lt (int .Values.replicas) 1 }}{{ fail (printf "replicas %v: want at least 1" .Values.replicas) }}{{ end }}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" .Values.namespace) }}{{ fail (printf "namespace %q: want a DNS label" .Values.namespace) }}{{ end }}
{{- end }}

{{/* The container fields both Deployments share. */}}
{{- define "weft.container" -}}
image: {{ include "weft.image" . }}
resources:
  limits:
    memory: 512Mi
  requests:
    cpu: 100m
    memory: 128Mi
securityContext:
  allowPrivilegeEscalation: false
  capabilities:
    drop:
    - ALL
  readOnlyRootFilesystem: true
  runAsGroup: 65532
  runAsNonRoot: true
  runAsUser: 65532
  seccompProfile:
    type: RuntimeDefault
{{- end }}

{{/* Preferred anti-affinity by host name for the Pods named by the argument. */}}
{{- define "weft.affinity" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
  - podAffinityTerm:
      labelSelector:
        matchLabels:
          app.kubernetes.io/name: {{ . }}
      topologyKey: kubernetes.io/hostname
    weight: 100
{{- end }}
