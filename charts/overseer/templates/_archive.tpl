{{/*
The output archive on S3-compatible object storage, and the bundled store that
holds it when no store of one's own is named (archive.s3.endpoint empty).
docs/install.rst explains both.
*/}}

{{/* "true" when the chart runs the bundled store (no archive.s3.endpoint given). */}}
{{- define "overseer.store.enabled" -}}
{{- if not .Values.archive.s3.endpoint }}true{{ end }}
{{- end }}

{{/* The bundled store's StatefulSet, Service and generated Secret. */}}
{{- define "overseer.store.fullname" -}}
{{- printf "%s-store" (include "overseer.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{- define "overseer.store.labels" -}}
{{ include "overseer.labels" . }}
app.kubernetes.io/component: store
{{- end }}

{{- define "overseer.store.selectorLabels" -}}
{{ include "overseer.selectorLabels" . }}
app.kubernetes.io/component: store
{{- end }}

{{/* repository:tag of the bundled store's image. */}}
{{- define "overseer.store.image" -}}
{{- printf "%s:%s" .Values.store.image.repository .Values.store.image.tag }}
{{- end }}

{{/*
The Secret with the archive's access key (keys archive.s3.credentials.*Key): the one
named by archive.s3.credentials.existingSecret, else, for the bundled store, the
generated FULLNAME-store; else (a store of one's own, no Secret) none: the client
library's default chain (workload identity, IRSA, instance profile) finds them.
*/}}
{{- define "overseer.archive.credentialsSecret" -}}
{{- if .Values.archive.s3.credentials.existingSecret }}
{{- .Values.archive.s3.credentials.existingSecret }}
{{- else if include "overseer.store.enabled" . }}
{{- include "overseer.store.fullname" . }}
{{- end }}
{{- end }}

{{/*
The bundled store's URL as the operator's and the API's pods reach it: from the
variables Kubernetes sets in every pod for each Service of its namespace, so that it
works without cluster DNS too (the local cluster has none). Helm creates Services
before Deployments, so the variables exist when these pods start.
*/}}
{{- define "overseer.archive.endpoint" -}}
{{- if .Values.archive.s3.endpoint }}
{{- .Values.archive.s3.endpoint }}
{{- else }}
{{- $service := include "overseer.store.fullname" . | upper | replace "-" "_" }}
{{- printf "http://$(%s_SERVICE_HOST):$(%s_SERVICE_PORT)" $service $service }}
{{- end }}
{{- end }}

{{/*
The archive settings of the operator (prefix OVERSEER_) and of the API (prefix
OVERSEER_API_): the same fields of overseer.settings.ArchiveSettings. Called with
(dict "root" $ "prefix" "OVERSEER_"); indented by the caller.
*/}}
{{- define "overseer.archive.env" -}}
{{- $ := .root -}}
{{- $p := .prefix -}}
{{- $s3 := $.Values.archive.s3 -}}
- name: {{ $p }}ARCHIVE_BACKEND
  value: s3
- name: {{ $p }}ARCHIVE_S3_ENDPOINT
  value: {{ include "overseer.archive.endpoint" $ | quote }}
- name: {{ $p }}ARCHIVE_S3_BUCKET
  value: {{ $s3.bucket | quote }}
- name: {{ $p }}ARCHIVE_S3_PREFIX
  value: {{ $s3.prefix | quote }}
- name: {{ $p }}ARCHIVE_S3_REGION
  value: {{ $s3.region | quote }}
- name: {{ $p }}ARCHIVE_S3_PATH_STYLE
  value: {{ $s3.pathStyle | quote }}
{{- with include "overseer.archive.credentialsSecret" $ }}
- name: {{ $p }}ARCHIVE_S3_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $s3.credentials.accessKeyIdKey }}
- name: {{ $p }}ARCHIVE_S3_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $s3.credentials.secretAccessKeyKey }}
{{- end }}
{{- end }}
