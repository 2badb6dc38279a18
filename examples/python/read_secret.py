#!/usr/bin/env python3
"""Reads a secret from the vault with the machine's managed identity: no credential in code or configuration.

The same code runs on Azure (App Service, a VM) and, after `eval "$(openmsi dev env)"`, on a developer
machine. Written for Debian's python3-azure (azure-identity 1.13, azure-keyvault-secrets 4.7):

    python3 examples/python/read_secret.py [secret-name]        (default: sample-secret)
"""
import os
import sys

from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient

vault_url = os.environ.get("AZURE_KEYVAULT_URL")
if not vault_url:
    sys.exit('AZURE_KEYVAULT_URL is not set: run eval "$(openmsi dev env)" first')
client = SecretClient(vault_url, DefaultAzureCredential())
print(client.get_secret(sys.argv[1] if len(sys.argv) > 1 else "sample-secret").value)
