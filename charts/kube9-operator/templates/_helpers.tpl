{{/* The chart name, shortened to fit a label value. */}}
{{- define "kube9-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The name of every object the chart creates. */}}
{{- define "kube9-operator.fullname" -}}
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

{{/* Labels that select the operator's Pod; they never change after install. */}}
{{- define "kube9-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kube9-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Standard labels of every object. */}}
{{- define "kube9-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kube9-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: kube9
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "kube9-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kube9-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the API key, or nothing on the free tier. */}}
{{- define "kube9-operator.apiKeySecret" -}}
{{- if and .Values.apiKey .Values.existingSecret }}
{{- fail "set apiKey or existingSecret, not both: existingSecret names a Secret you manage, apiKey makes the chart create one" }}
{{- end }}
{{- if .Values.existingSecret }}
{{- .Values.existingSecret }}
{{- else if .Values.apiKey }}
{{- printf "%s-api-key" (include "kube9-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "kube9-operator.apiKeySecretKey" -}}
{{- if .Values.existingSecret }}{{ .Values.existingSecretKey }}{{ else }}api-key{{ end }}
{{- end }}

{{/*
The Lease the replicas elect a leader with.
*/}}
{{- define "kube9-operator.leaseName" -}}
{{ include "kube9-operator.fullname" . | trunc 56 | trimSuffix "-" }}-leader
{{- end }}

{{/*
The PromQL selector of this release's operator Pods, as a ServiceMonitor or PodMonitor labels
their series (namespace and pod).
*/}}
{{- define "kube9-operator.metricsSelector" -}}
namespace="{{ .Release.Namespace }}", pod=~"{{ include "kube9-operator.fullname" . }}-.*"
{{- end }}
