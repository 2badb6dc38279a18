#!/usr/bin/env bash
# The raw HTTP calls behind every managed-identity client, as curl: a token from the machine's IMDS endpoint
# (`Metadata: true`, no secret), then the secret from the vault with `Authorization: Bearer`. The same two
# calls work on an Azure VM (IMDS at http://169.254.169.254); here, after `eval "$(openmsi dev env)"`:
#
#   bash examples/curl/read-secret.sh [secret-name]        (default: sample-secret)
#
# IMDS_ENDPOINT_BASE overrides where the token comes from (default: the origin of IDENTITY_ENDPOINT, the local
# agent). curl reaches the vault host through HTTPS_PROXY (openmsi dev's loopback proxy, so *.localhost needs
# no DNS) and trusts the dev CA through CURL_CA_BUNDLE (the system CAs plus the dev CA), so no --cacert.
set -euo pipefail

secret_name="${1:-sample-secret}"
: "${AZURE_KEYVAULT_URL:?run eval \"\$(openmsi dev env)\" first}"
: "${CURL_CA_BUNDLE:?run eval \"\$(openmsi dev env)\" first}"
imds="${IMDS_ENDPOINT_BASE:-$(printf '%s\n' "${IDENTITY_ENDPOINT:?run eval \"\$(openmsi dev env)\" first}" | sed -E 's#^(https?://[^/]+).*#\1#')}"

# One string field of a JSON object (jq -r ".$1" does the same, where jq is installed).
json_field() { sed -nE "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"([^\"]*)\".*/\1/p"; }

# 1. A token for Key Vault from IMDS (api-version 2018-02-01, as the seeds' PowerShell calls it).
token=$(curl -sS --fail-with-body -H 'Metadata: true' \
  "$imds/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net" | json_field access_token)
[ -n "$token" ] || { echo "no access_token from $imds" >&2; exit 1; }

# 2. The secret, with the api-version of the seeds' calls.
value=$(curl -sS --fail-with-body -H "Authorization: Bearer $token" \
  "${AZURE_KEYVAULT_URL%/}/secrets/$secret_name?api-version=2016-10-01" | json_field value)
printf '%s\n' "$value"
