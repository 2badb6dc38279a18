#!/bin/sh
# The container's entrypoint: refuses to start without the managed-identity endpoint the host passes in,
# then runs the app (which reads SECRET_NAME, default sample-secret, from AZURE_KEYVAULT_URL).
set -eu
: "${IDENTITY_ENDPOINT:?not set: start the container with the host agent's variables (see docker-compose.yml)}"
: "${AZURE_KEYVAULT_URL:?not set: see docker-compose.yml}"
exec node "$(dirname "$0")/app.js" "$@"
