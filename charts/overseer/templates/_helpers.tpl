{{/*
Names and labels shared by every template. Object names are capped at 63
characters (the limit of a label value, which names also end up in).
*/}}

{{/* The chart's name, or nameOverride. */}}
{{- define "overseer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name: fullnameOverride, or RELEASE-NAME, or RELEASE
alone when it already contains the chart's name (release "overseer" gives
"overseer", not "overseer-overseer").
*/}}
{{- define "overseer.fullname" -}}
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

{{/* NAME-VERSION, for the helm.sh/chart label. */}}
{{- define "overseer.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels that select a release's pods; never change them (selectors are immutable). */}}
{{- define "overseer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "overseer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The labels on every object of the chart. */}}
{{- define "overseer.labels" -}}
helm.sh/chart: {{ include "overseer.chart" . }}
{{ include "overseer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: overseer
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The operator's objects: the common labels plus its component. */}}
{{- define "overseer.operator.labels" -}}
{{ include "overseer.labels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "overseer.operator.selectorLabels" -}}
{{ include "overseer.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The operator's Deployment, and the prefix of its RBAC objects. */}}
{{- define "overseer.operator.fullname" -}}
{{- printf "%s-operator" (include "overseer.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The operator's ServiceAccount. */}}
{{- define "overseer.operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "overseer.operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name must name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag of the Overseer image. */}}
{{- define "overseer.image" -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag }}
{{- end }}

{{/*
The namespaces the operator serves, comma-separated: watchNamespaces, or the release's
namespace alone when it is empty; empty when clusterWide (every namespace). A list and
clusterWide together are refused: which one was meant?
*/}}
{{- define "overseer.servedNamespaces" -}}
{{- if .Values.clusterWide }}
{{- if .Values.watchNamespaces }}
{{- fail "clusterWide: true serves every namespace; leave watchNamespaces empty, or set clusterWide: false to serve only the listed ones" }}
{{- end }}
{{- else }}
{{- .Values.watchNamespaces | default (list .Release.Namespace) | join "," }}
{{- end }}
{{- end }}

{{/*
What the operator does to the namespaced resources it serves: the rules of the
ClusterRole (every namespace) or of the Role in each watched namespace.
docs/install.rst says why each one is needed; keep the two in step.
*/}}
{{- define "overseer.operator.namespacedRules" -}}
# Watch repositories (kopf), add and remove kopf's finalizer and bookkeeping
# annotations (patch), and write the sync's outcome into their status.
- apiGroups: [overseer.dev]
  resources: [overseerrepositories]
  verbs: [get, list, watch, patch]
- apiGroups: [overseer.dev]
  resources: [overseerrepositories/status]
  verbs: [patch]
# Jobs are written by server-side apply (patch; create when new), pruned when
# they leave git, and watched for the sync's index.
- apiGroups: [overseer.dev]
  resources: [overseerjobs]
  verbs: [get, list, watch, create, patch, delete]
# The repository's bin/ bundle: one immutable ConfigMap per commit, old ones deleted.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, create, delete]
# Credentials named by a repository's secretRef; read one by one, never listed.
# An execution's parameters: one Secret each, created with its Job.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create]
# Executions: watched (kopf), kopf's bookkeeping annotations and the settled label
# (patch), their outcome in the status; the OverseerJob's status names its latest
# execution. Deleted past jobs.executionTTL.
- apiGroups: [overseer.dev]
  resources: [overseerexecutions]
  verbs: [get, list, watch, patch, delete]
- apiGroups: [overseer.dev]
  resources: [overseerexecutions/status, overseerjobs/status]
  verbs: [patch]
# The scheduler creates the executions of scheduled jobs (concurrency's replace
# requests SIGTERM through an execution's spec.signals: the patch above).
- apiGroups: [overseer.dev]
  resources: [overseerexecutions]
  verbs: [create]
# Each execution runs in a Job, created, watched, and deleted once its output is archived.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, delete]
# The Job's pods are only read: their status is the execution's outcome.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# Their log carries the job's stdout, stderr and custom events (the archive, the status).
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
# Signals requested through an execution: overseer-signal run in the job container, the
# only exec the operator makes. A WebSocket exec is authorised as get before Kubernetes
# 1.35, as get and create since; pod names are not known in advance (no resourceNames).
- apiGroups: [""]
  resources: [pods/exec]
  verbs: [create, get]
# Executions' pods run as the ServiceAccount overseer-execution (no token, no bindings),
# made on first use; never read nor changed (create cannot be narrowed to one name).
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [create]
# Warnings about syncs on the repository (kopf posts core/v1 Events).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}

{{/* Cluster-scoped resources kopf observes: CRDs always, namespaces when not cluster-wide. */}}
{{- define "overseer.operator.clusterRules" -}}
# kopf watches CRDs to notice Overseer's resources being added or removed.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- if not .Values.webhooks.serviceCidrs }}
# Webhooks refuse ClusterIPs: with no serviceCidrs given, the operator reads the cluster's
# Service ranges at start-up (docs/security.rst).
- apiGroups: [networking.k8s.io]
  resources: [servicecidrs]
  verbs: [list]
- apiGroups: [""]
  resources: [services]
  resourceNames: [kubernetes]
  verbs: [get]
{{- end }}
{{- if not .Values.clusterWide }}
# kopf serving a list of namespaces watches namespaces to start and stop with them.
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- end }}
{{- end }}

{{/* --- the API ---------------------------------------------------------------------- */}}

{{/* The API's objects: the common labels plus its component. */}}
{{- define "overseer.api.labels" -}}
{{ include "overseer.labels" . }}
app.kubernetes.io/component: api
{{- end }}

{{- define "overseer.api.selectorLabels" -}}
{{ include "overseer.selectorLabels" . }}
app.kubernetes.io/component: api
{{- end }}

{{/* The API's Deployment, Service and RBAC objects. */}}
{{- define "overseer.api.fullname" -}}
{{- printf "%s-api" (include "overseer.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The ServiceAccount the API's pods run as. */}}
{{- define "overseer.api.serviceAccountName" -}}
{{- include "overseer.api.fullname" . }}
{{- end }}

{{/* The namespace the original's paths (/jobs...) serve. */}}
{{- define "overseer.api.defaultNamespace" -}}
{{- .Values.api.defaultNamespace | default (first (compact (splitList "," (include "overseer.servedNamespaces" .)))) | default "default" }}
{{- end }}

{{/* Every namespace the API serves: the default one, then the served ones. */}}
{{- define "overseer.api.namespaces" -}}
{{- prepend (compact (splitList "," (include "overseer.servedNamespaces" .))) (include "overseer.api.defaultNamespace" .) | uniq | join "," }}
{{- end }}

{{/* The Secret holding the API's hashed tokens (token mode). */}}
{{- define "overseer.api.tokensSecret" -}}
{{- .Values.api.auth.existingSecret | default (printf "%s-tokens" (include "overseer.api.fullname" .)) }}
{{- end }}

{{/* The API's address inside the cluster: each webhook's `metadata` URL starts with it. */}}
{{- define "overseer.api.url" -}}
{{- printf "http://%s.%s.svc:%v" (include "overseer.api.fullname" .) .Release.Namespace .Values.api.service.port }}
{{- end }}

{{/* The API's URL as its clients reach it: api.publicUrl, else the ingress's host; else
empty (each request's own URL). */}}
{{- define "overseer.api.publicUrl" -}}
{{- $ingress := .Values.api.ingress }}
{{- if .Values.api.publicUrl }}
{{- .Values.api.publicUrl | trimSuffix "/" }}
{{- else if and $ingress.enabled $ingress.host }}
{{- printf "%s://%s" (ternary "https" "http" (ne $ingress.tlsSecretName "")) $ingress.host }}
{{- end }}
{{- end }}

{{/*
What the API does in each namespace it serves (docs/install.rst says why each rule).
*/}}
{{- define "overseer.api.namespacedRules" -}}
# Reads come from watch caches: one list-then-watch per kind and namespace.
- apiGroups: [overseer.dev]
  resources: [overseerrepositories, overseerjobs, overseerexecutions]
  verbs: [get, list, watch]
# POST /jobs/{name} and the repeat route create executions.
- apiGroups: [overseer.dev]
  resources: [overseerexecutions]
  verbs: [create]
# DELETE/PUT /jobs/{name} patch spec.active; POST /sync and push hooks annotate the
# repository; a signal is appended to the execution's spec.signals; a replay takes
# the execution's settled label off.
- apiGroups: [overseer.dev]
  resources: [overseerjobs, overseerrepositories, overseerexecutions]
  verbs: [patch]
# POST .../deliveries/{id} owes a webhook delivery again: a reset in the execution's status.
- apiGroups: [overseer.dev]
  resources: [overseerexecutions/status]
  verbs: [patch]
# Who executed, signalled, activated or synced, as an Event on what changed.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
# Secret parameters: each execution's values in a Secret it owns, created with it; a
# repeat reads the repeated execution's. One by one, never listed.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create]
# Idempotency-Key claims: one Lease per key, created atomically, replaced when expired,
# listed and deleted by garbage collection.
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, list, create, update, delete]
# (Push hooks read the Secret a repository names in spec.hookSecretRef with the above.)
{{- end }}

{{/* The API container of the API's Deployment. */}}
{{- define "overseer.api.container" -}}
{{- $api := .Values.api -}}
- name: api
  image: {{ include "overseer.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: [python, -m, overseer_api]
  env:
    - name: OVERSEER_API_NAMESPACE
      value: {{ include "overseer.api.defaultNamespace" . | quote }}
    - name: OVERSEER_API_NAMESPACES
      value: {{ include "overseer.api.namespaces" . | quote }}
    # Output is read from the S3 archive the operator writes.
    {{- include "overseer.archive.env" (dict "root" . "prefix" "OVERSEER_API_") | nindent 4 }}
    - name: OVERSEER_API_AUTH
      value: {{ $api.auth.mode | quote }}
    {{- if eq $api.auth.mode "token" }}
    - name: OVERSEER_API_TOKENS_FILE
      value: /etc/overseer/api-tokens/tokens.json
    {{- else }}
    - name: OVERSEER_API_AUTH_CACHE_TTL
      value: {{ $api.auth.cacheTTL | quote }}
    {{- end }}
    - name: OVERSEER_API_IDEMPOTENCY_TTL
      value: {{ $api.idempotency.ttl | quote }}
    {{- with include "overseer.api.publicUrl" . }}
    - name: OVERSEER_API_PUBLIC_URL
      value: {{ . | quote }}
    {{- end }}
    - name: OVERSEER_API_GIT_HOOKS
      value: {{ $api.gitHooks.enabled | quote }}
    - name: OVERSEER_API_PORT
      value: "8000"
    - name: OVERSEER_API_LOG_LEVEL
      value: {{ $api.logLevel | quote }}
    {{- with $api.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: http
      containerPort: 8000
      protocol: TCP
  # Alive while the event loop answers; ready once the watch caches hold a first full list.
  livenessProbe:
    httpGet:
      path: /healthz
      port: http
    periodSeconds: 20
    timeoutSeconds: 5
    failureThreshold: 3
  readinessProbe:
    httpGet:
      path: /readyz
      port: http
    periodSeconds: 5
    timeoutSeconds: 5
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  {{- with $api.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    {{- if eq $api.auth.mode "token" }}
    - name: api-tokens
      mountPath: /etc/overseer/api-tokens
      readOnly: true
    {{- end }}
    - name: api-tmp
      mountPath: /tmp
{{- end }}

{{/* The API container's volumes. */}}
{{- define "overseer.api.volumes" -}}
{{- if eq .Values.api.auth.mode "token" -}}
# Only the hashes reach the pod: the admin token's plain value stays in the Secret.
- name: api-tokens
  secret:
    secretName: {{ include "overseer.api.tokensSecret" . }}
    items:
      - key: tokens.json
        path: tokens.json
{{- end }}
- name: api-tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end }}

{{/*
The Secret the operator signs webhooks with: the one named by
webhooks.signingSecret.existingSecret, else the generated FULLNAME-webhooks, else
(generation off) none: empty.
*/}}
{{- define "overseer.webhookSecretName" -}}
{{- $signing := .Values.webhooks.signingSecret }}
{{- if $signing.existingSecret }}
{{- $signing.existingSecret }}
{{- else if $signing.generate }}
{{- printf "%s-webhooks" (include "overseer.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}
{{- end }}

{{/*
The Kubernetes API server's addresses, comma-separated, as /32 or /128: those of
networkPolicy.egress.apiServerCIDRs, else read from the cluster at install (the
`kubernetes` Service's ClusterIPs and its EndpointSlice's addresses); none with
`helm template`, which reads nothing.
*/}}
{{- define "overseer.apiServerCIDRs" -}}
{{- $found := list }}
{{- if .Values.networkPolicy.egress.apiServerCIDRs }}
{{- $found = .Values.networkPolicy.egress.apiServerCIDRs }}
{{- else }}
{{- $addresses := list }}
{{- with lookup "v1" "Service" "default" "kubernetes" }}
{{- $addresses = concat $addresses (.spec.clusterIPs | default list) }}
{{- end }}
{{- with lookup "discovery.k8s.io/v1" "EndpointSlice" "default" "kubernetes" }}
{{- range .endpoints }}
{{- $addresses = concat $addresses (.addresses | default list) }}
{{- end }}
{{- end }}
{{- range $addresses }}
{{- $found = append $found (printf "%s/%s" . (ternary "128" "32" (contains ":" .))) }}
{{- end }}
{{- end }}
{{- $found | uniq | join "," }}
{{- end }}
