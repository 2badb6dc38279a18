#!/usr/bin/env bash
# A CI step that needs a secret and stores no credential: run it under
#
#   openmsi run --identity dev-app -- bash examples/ci/deploy-step.sh
#
# which gives it IDENTITY_ENDPOINT/IDENTITY_HEADER (App Service 2019-08-01) for dev-app only. It gets a Key
# Vault token there, reads SECRET_NAME (default sample-secret) from AZURE_KEYVAULT_URL, masks it in the
# job log (GitHub Actions' ::add-mask::) and uses it.
set -euo pipefail

: "${IDENTITY_ENDPOINT:?run this under openmsi run --identity NAME -- ...}"
: "${IDENTITY_HEADER:?run this under openmsi run --identity NAME -- ...}"
: "${AZURE_KEYVAULT_URL:?set AZURE_KEYVAULT_URL (eval \"\$(openmsi dev env)\" does)}"
secret_name="${SECRET_NAME:-sample-secret}"
ca=(); [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && ca=(--cacert "$NODE_EXTRA_CA_CERTS")

json_field() { sed -nE "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"([^\"]*)\".*/\1/p"; }

token=$(curl -sS --fail-with-body -H "X-IDENTITY-HEADER: $IDENTITY_HEADER" \
  "$IDENTITY_ENDPOINT?api-version=2019-08-01&resource=https%3A%2F%2Fvault.azure.net" | json_field access_token)
[ -n "$token" ] || { echo "no token from $IDENTITY_ENDPOINT" >&2; exit 1; }
secret=$(curl -sS --fail-with-body "${ca[@]}" -H "Authorization: Bearer $token" \
  "${AZURE_KEYVAULT_URL%/}/secrets/$secret_name?api-version=7.4" | json_field value)
[ -n "$secret" ] || { echo "secret $secret_name is empty or missing" >&2; exit 1; }

echo "::add-mask::$secret"
# The deployment itself would use "$secret" here (e.g. as a database password); this example only says so.
echo "read $secret_name (${#secret} characters) from $AZURE_KEYVAULT_URL with no stored credential"
