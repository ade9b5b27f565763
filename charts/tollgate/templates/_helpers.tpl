{{/*
Naming and labels shared by every template.
*/}}

{{- define "tollgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* tollgate.fullname is the prefix of every object name. */}}
{{- define "tollgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "tollgate.controller.fullname" -}}
{{- printf "%s-controller" (include "tollgate.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tollgate.dataplane.fullname" -}}
{{- printf "%s-dataplane" (include "tollgate.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tollgate.controller.serviceAccountName" -}}
{{- default (include "tollgate.controller.fullname" .) .Values.controller.serviceAccount.name }}
{{- end }}

{{- define "tollgate.dataplane.serviceAccountName" -}}
{{- default (include "tollgate.dataplane.fullname" .) .Values.dataplane.serviceAccount.name }}
{{- end }}

{{/* tollgate.labels: on every object. Call with (dict "ctx" $ "component" "controller"). */}}
{{- define "tollgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "tollgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: tollgate
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* tollgate.selectorLabels: the immutable subset used in selectors. */}}
{{- define "tollgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tollgate.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{- define "tollgate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
tollgate.pushURL is where data planes reach the controller's push channel.
$(POD_NAMESPACE) is expanded by the kubelet from the container's env, so the
same args work in any namespace (config/ kustomizations share them).
*/}}
{{- define "tollgate.pushURL" -}}
{{- printf "http://%s.$(POD_NAMESPACE).svc:%d" (include "tollgate.controller.fullname" .) (int .Values.controller.pushPort) }}
{{- end }}

{{/*
tollgate.allowedServiceAccounts: the service accounts (namespace/name) the
controller accepts on the push channel.
*/}}
{{- define "tollgate.allowedServiceAccounts" -}}
{{- $sas := list (printf "$(POD_NAMESPACE)/%s" (include "tollgate.dataplane.serviceAccountName" .)) }}
{{- join "," (concat $sas .Values.pushAuth.extraAllowedServiceAccounts) }}
{{- end }}

{{/* tollgate.tokenDir holds the data plane's --token-file. */}}
{{- define "tollgate.tokenDir" -}}/var/run/secrets/tollgate{{- end }}

{{/* tollgate.validate fails rendering on inconsistent values the schema cannot express. */}}
{{- define "tollgate.validate" -}}
{{- if and (eq .Values.pushAuth.mode "static") (not .Values.pushAuth.static.existingSecret) }}
{{- fail "pushAuth.static.existingSecret is required when pushAuth.mode is static (see values.yaml for the kubectl command that creates it)" }}
{{- end }}
{{- if and (not .Values.controller.leaderElection.enabled) (gt (int .Values.controller.replicas) 1) }}
{{- fail "controller.leaderElection.enabled=false needs controller.replicas=1: two controllers without a leader would both write status and push tables" }}
{{- end }}
{{- if and .Values.dataplane.autoscaling.enabled (gt (int .Values.dataplane.autoscaling.minReplicas) (int .Values.dataplane.autoscaling.maxReplicas)) }}
{{- fail "dataplane.autoscaling.minReplicas must not exceed maxReplicas" }}
{{- end }}
{{- end }}
