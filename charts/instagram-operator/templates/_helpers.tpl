{{/* Chart name, for labels. */}}
{{- define "instagram-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Prefix of every object name. A release named instagram-operator (the
documented one) gives the names config/default gives, so a kustomize
install can be adopted by the chart.
*/}}
{{- define "instagram-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Labels of every object: those config/ sets plus Helm's own. Selectors use
only instagram-operator.selectorLabels, the same as config/, because a
Deployment's selector cannot change after it is created.
*/}}
{{- define "instagram-operator.labels" -}}
app.kubernetes.io/part-of: instagram-operator
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Selector labels of a component: call with (list $ "manager"). */}}
{{- define "instagram-operator.selectorLabels" -}}
{{- $top := index . 0 -}}
app.kubernetes.io/name: {{ include "instagram-operator.name" $top }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Object labels of a component: call with (list $ "manager"). */}}
{{- define "instagram-operator.componentLabels" -}}
{{ include "instagram-operator.selectorLabels" . }}
{{ include "instagram-operator.labels" (index . 0) }}
{{- end -}}

{{/* The image reference: repository@digest, else repository:tag (default appVersion). */}}
{{- define "instagram-operator.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* publicURL without a trailing slash. */}}
{{- define "instagram-operator.publicURL" -}}
{{- trimSuffix "/" .Values.publicURL -}}
{{- end -}}

{{/* Environment both binaries share. */}}
{{- define "instagram-operator.env" -}}
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: PUBLIC_URL
  valueFrom:
    configMapKeyRef:
      name: {{ include "instagram-operator.fullname" . }}-settings
      key: publicURL
{{- end -}}

{{/* Pod template annotations: the settings checksum rolls the pods when publicURL changes. */}}
{{- define "instagram-operator.podAnnotations" -}}
{{- $top := index . 0 -}}
checksum/settings: {{ include (print $top.Template.BasePath "/settings.yaml") $top | sha256sum }}
{{- with index . 1 }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The documents of a multi-document YAML file of files/ (copied from config/
by make chart), as a YAML list: parse with fromYamlArray. Documents that
are only comments are left out.
*/}}
{{- define "instagram-operator.documents" -}}
{{- $docs := list -}}
{{- range $doc := regexSplit "(?m)^---[ \\t]*$" . -1 -}}
{{- $obj := fromYaml $doc -}}
{{- if hasKey $obj "Error" -}}
{{- fail (printf "cannot parse a document of files/: %s" $obj.Error) -}}
{{- end -}}
{{- if $obj -}}
{{- $docs = append $docs $obj -}}
{{- end -}}
{{- end -}}
{{- toYaml $docs -}}
{{- end -}}
