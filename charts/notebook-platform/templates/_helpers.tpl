{{/* Names ------------------------------------------------------------------------------------------- */}}

{{- define "nbp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "nbp.fullname" -}}
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

{{/* "<fullname>-<component>", e.g. include "nbp.component" (list . "webhook") */}}
{{- define "nbp.component" -}}
{{- printf "%s-%s" (include "nbp.fullname" (index . 0)) (index . 1) -}}
{{- end -}}

{{- define "nbp.webhook.serviceName" -}}{{ include "nbp.component" (list . "webhook") }}{{- end -}}
{{- define "nbp.webhook.secretName" -}}{{ include "nbp.component" (list . "webhook-tls") }}{{- end -}}
{{- define "nbp.webhook.configurationName" -}}{{ include "nbp.component" (list . "webhook") }}{{- end -}}
{{- define "nbp.webhook.certificateName" -}}{{ include "nbp.component" (list . "webhook-serving") }}{{- end -}}
{{- define "nbp.hub.serviceName" -}}{{ include "nbp.component" (list . "hub") }}{{- end -}}
{{- define "nbp.hub.secretName" -}}{{ include "nbp.component" (list . "hub") }}{{- end -}}
{{- define "nbp.proxy.publicServiceName" -}}{{ include "nbp.component" (list . "proxy-public") }}{{- end -}}
{{- define "nbp.proxy.apiServiceName" -}}{{ include "nbp.component" (list . "proxy-api") }}{{- end -}}
{{- define "nbp.builder.serviceName" -}}{{ include "nbp.component" (list . "builder") }}{{- end -}}

{{/* Labels: every object carries managed-by notebook-platform and its component (CONVENTIONS.md). ------ */}}

{{- define "nbp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nbp.name" (index . 0) }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "nbp.labels" -}}
{{ include "nbp.selectorLabels" . }}
app.kubernetes.io/managed-by: notebook-platform
app.kubernetes.io/part-of: notebook-platform
app.kubernetes.io/version: {{ (index . 0).Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" (index . 0).Chart.Name (index . 0).Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Images ---------------------------------------------------------------------------------------------- */}}

{{/* include "nbp.image" (list . .Values.webhook.image) */}}
{{- define "nbp.image" -}}
{{- $root := index . 0 -}}
{{- $img := index . 1 -}}
{{- $tag := $img.tag | default $root.Values.image.tag | default $root.Chart.AppVersion -}}
{{- if $root.Values.image.registry -}}
{{- printf "%s/%s:%s" $root.Values.image.registry $img.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" $img.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Settings as environment variables: include "nbp.settingsEnv" (list "WEBHOOK_" .Values.webhook.settings).
     Strings as they are; numbers, booleans, lists and maps as JSON (how pydantic-settings reads them);
     null leaves the setting at its default. */}}
{{- define "nbp.settingsEnv" -}}
{{- $prefix := index . 0 -}}
{{- range $key, $value := index . 1 }}
{{- if not (kindIs "invalid" $value) }}
- name: {{ printf "%s%s" $prefix (upper $key) }}
  value: {{ ternary $value (toJson $value) (kindIs "string" $value) | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Pod-level bits every component shares. include "nbp.podCommon" (list . .Values.webhook) */}}
{{- define "nbp.podCommon" -}}
{{- $root := index . 0 -}}
{{- $c := index . 1 -}}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- with $root.Values.image.pullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- with $c.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}

{{/* The webhook's TLS material, computed once per render (Secret and caBundle must agree):
     the existing Secret's data when there is one (helm upgrade keeps the CA and whatever the cert controller
     rotated), else a new CA and serving certificate from Helm. Returns YAML: {ca.crt, ca.key, tls.crt, tls.key},
     each base64. */}}
{{- define "nbp.webhook.certData" -}}
{{- $secretName := include "nbp.webhook.secretName" . -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $secretName -}}
{{- if and $existing $existing.data (index $existing.data "ca.crt") (index $existing.data "tls.crt") (index $existing.data "tls.key") -}}
ca.crt: {{ index $existing.data "ca.crt" }}
ca.key: {{ index $existing.data "ca.key" | default "" }}
tls.crt: {{ index $existing.data "tls.crt" }}
tls.key: {{ index $existing.data "tls.key" }}
{{- else -}}
{{- $svc := include "nbp.webhook.serviceName" . -}}
{{- $ns := .Release.Namespace -}}
{{- $s := .Values.webhook.settings -}}
{{- $ca := genCA "notebook-platform-webhook-ca" (int $s.cert_ca_validity_days) -}}
{{- $names := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $svc $ns) nil $names (int $s.cert_validity_days) $ca -}}
ca.crt: {{ $ca.Cert | b64enc }}
ca.key: {{ $ca.Key | b64enc }}
tls.crt: {{ $cert.Cert | b64enc }}
tls.key: {{ $cert.Key | b64enc }}
{{- end -}}
{{- end -}}

{{/* The hub settings file: values with the chart's derived URLs filled in where they are null.
     include "nbp.hub.settings" (dict "root" . "password" <generated shared password>
                                     "adminPassword" <generated admin password>) */}}
{{- define "nbp.hub.settings" -}}
{{- $password := .password -}}
{{- $adminPassword := .adminPassword -}}
{{- with .root -}}
{{- $s := deepCopy .Values.hub.settings -}}
{{- $ns := .Release.Namespace -}}
{{- if not $s.hub_connect_url -}}
{{- $_ := set $s "hub_connect_url" (printf "http://%s.%s.svc:8081" (include "nbp.hub.serviceName" .) $ns) -}}
{{- end -}}
{{- if not $s.proxy_api_url -}}
{{- $_ := set $s "proxy_api_url" (printf "http://%s:8001" (include "nbp.proxy.apiServiceName" .)) -}}
{{- end -}}
{{- $b := $s.builder -}}
{{- if not $b.url -}}
{{- $scheme := ternary "https" "http" (not (empty .Values.builder.tls.secretName)) -}}
{{- $_ := set $b "url" (printf "%s://%s.%s.svc:%v" $scheme (include "nbp.builder.serviceName" .) $ns (int .Values.builder.settings.port)) -}}
{{- end -}}
{{- if not $b.registry -}}
{{- $_ := set $b "registry" .Values.builder.settings.registry -}}
{{- end -}}
{{- if and (not $s.shared_password) (has $s.authenticator_class (list "shared-password" "SharedPasswordAuthenticator")) -}}
{{- $_ := set $s "shared_password" $password -}}
{{- end -}}
{{- if and (not $s.admin_password) $s.admin_users (has $s.authenticator_class (list "shared-password" "SharedPasswordAuthenticator")) -}}
{{- $_ := set $s "admin_password" $adminPassword -}}
{{- end -}}
{{- toYaml $s -}}
{{- end -}}
{{- end -}}
