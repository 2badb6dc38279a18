/**
 * Workload identity federation, outbound (docs/federation.md "Outbound"):
 *
 * - `openmsi identity federation link|show|unlink`: link a user-assigned identity to an upstream Entra app or
 *   managed identity; `link` and `show` print the federated identity credential to create upstream;
 * - `openmsi federation export --out DIR`: the outbound issuer's discovery document and JWKS as static files.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { bodyOf, withClient, globalOptions, type ManagementClient } from '../api-client.js';
import { column, printResult } from '../output.js';
import { seg } from './shared.js';

const UAMI = 'providers/Microsoft.ManagedIdentity/userAssignedIdentities';
const API_VERSION = '2023-01-31';

interface LinkAddress {
  identityName: string;
  resourceGroup: string;
}

function linkPath(client: ManagementClient, opts: LinkAddress): string {
  return `${client.subscriptionPath()}/resourceGroups/${seg(opts.resourceGroup)}/${UAMI}/${seg(opts.identityName)}/outboundFederation/default`;
}

const LINK_COLUMNS = [
  column('TenantId', 'properties.tenantId'),
  column('ClientId', 'properties.clientId'),
  column('AuthorityHost', 'properties.authorityHost'),
  column('Issuer', 'properties.issuer'),
  column('Subject', 'properties.subject'),
];

function registerLinkCommands(program: Command): void {
  const identity = program.commands.find((c) => c.name() === 'identity');
  if (identity === undefined) throw new Error('register the `identity` command first');
  const federation = identity
    .command('federation')
    .description(
      "Outbound federation: link a user-assigned identity to an Entra app or managed identity that trusts openmsi's assertions, so the agent serves that upstream's tokens.",
    )
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi identity federation link --identity-name app-id -g app-rg --tenant-id <entra tenant> --client-id <entra app or UAMI client id>\n  openmsi identity federation show --identity-name app-id -g app-rg --query federatedCredential > fic.json\n  az ad app federated-credential create --id <entra app id> --parameters @fic.json\n  openmsi identity federation unlink --identity-name app-id -g app-rg',
    );
  const address = (c: Command) =>
    c.requiredOption('--identity-name <name>', 'the user-assigned identity').requiredOption('-g, --resource-group <group>', 'resource group');

  address(federation.command('link'))
    .description(
      'Link the identity to an upstream Entra app or managed identity (replacing any link it had); prints the federated identity credential to create upstream.',
    )
    .requiredOption('--tenant-id <tenant>', 'the upstream tenant (GUID)')
    .requiredOption('--client-id <clientId>', "the upstream app's or user-assigned managed identity's client id")
    .option('--authority-host <url>', 'the upstream authority (default https://login.microsoftonline.com)')
    .option('--issuer <url>', "the outbound issuer this identity's assertions carry (default: the installation's)")
    .action(async (opts: LinkAddress & { tenantId: string; clientId: string; authorityHost?: string; issuer?: string }, cmd: Command) => {
      const properties = {
        tenantId: opts.tenantId,
        clientId: opts.clientId,
        ...(opts.authorityHost === undefined ? {} : { authorityHost: opts.authorityHost }),
        ...(opts.issuer === undefined ? {} : { issuer: opts.issuer }),
      };
      const result = await withClient(cmd, async (client) =>
        bodyOf(await client.arm('PUT', linkPath(client, opts), { apiVersion: API_VERSION, body: { properties } })),
      );
      printResult(result, globalOptions(cmd), LINK_COLUMNS);
    });

  address(federation.command('show'))
    .description("Show the identity's upstream link and the federated identity credential it needs upstream.")
    .action(async (opts: LinkAddress, cmd: Command) => {
      const result = await withClient(cmd, async (client) => bodyOf(await client.arm('GET', linkPath(client, opts), { apiVersion: API_VERSION })));
      printResult(result, globalOptions(cmd), LINK_COLUMNS);
    });

  federation
    .command('list')
    .description('List the upstream links of the user-assigned identities in the subscription or a resource group (one read per identity).')
    .option('-g, --resource-group <group>', 'only this resource group')
    .action(async (opts: { resourceGroup?: string }, cmd: Command) => {
      const result = await withClient(cmd, async (client) => {
        const scope = opts.resourceGroup === undefined ? client.subscriptionPath() : `${client.subscriptionPath()}/resourceGroups/${seg(opts.resourceGroup)}`;
        const identities = bodyOf(await client.arm<{ value: { id: string }[] }>('GET', `${scope}/${UAMI}`, { apiVersion: API_VERSION })).value ?? [];
        const links: unknown[] = [];
        for (const identity of identities) {
          // 404: the identity has no link.
          const answer = await client.arm('GET', `${identity.id}/outboundFederation/default`, { apiVersion: API_VERSION, allowStatus: [404] });
          if (answer.status === 200) links.push(answer.body);
        }
        return links;
      });
      printResult(result, globalOptions(cmd), LINK_COLUMNS);
    });

  address(federation.command('unlink'))
    .description("Remove the identity's upstream link: the agent serves openmsi's own tokens for it again.")
    .action(async (opts: LinkAddress, cmd: Command) => {
      await withClient(cmd, async (client) => {
        await client.arm('DELETE', linkPath(client, opts), { apiVersion: API_VERSION });
      });
    });
}

interface OutboundDocuments {
  issuer: string;
  jwksUri: string;
  openidConfiguration: Record<string, unknown>;
  jwks: { keys: unknown[] };
}

function registerExportCommand(program: Command): void {
  const federation = program.commands.find((c) => c.name() === 'federation');
  if (federation === undefined) throw new Error('register the `federation` command first');
  federation
    .command('export')
    .description(
      "Write the outbound issuer's discovery document and JWKS as static files, laid out as under the issuer URL, for a public HTTPS host (Entra fetches {issuer}/.well-known/openid-configuration). Export again after every key rotation.",
    )
    .requiredOption('--out <dir>', 'the directory to write (DIR/.well-known/openid-configuration and DIR/openid/v1/jwks)')
    .option('--issuer <url>', "the documents of this issuer (a link's own --issuer) instead of the installation's")
    .addHelpText('after', "\nExamples:\n  openmsi federation export --out ./issuer && az storage blob upload-batch -d '$web' -s ./issuer")
    .action(async (opts: { out: string; issuer?: string }, cmd: Command) => {
      const documents = await withClient(cmd, async (client) =>
        bodyOf(await client.openmsi<OutboundDocuments>('GET', '/federationOutbound', opts.issuer === undefined ? {} : { query: { issuer: opts.issuer } })),
      );
      const dir = resolve(opts.out);
      const issuerPath = new URL(documents.issuer).pathname.replace(/\/$/, '');
      const jwksPath = new URL(documents.jwksUri).pathname;
      if (!jwksPath.startsWith(`${issuerPath}/`)) throw new Error(`the JWKS URL ${documents.jwksUri} is not under the issuer ${documents.issuer}`);
      const files = [
        { path: join(dir, '.well-known', 'openid-configuration'), content: JSON.stringify(documents.openidConfiguration, null, 2) },
        { path: join(dir, ...jwksPath.slice(issuerPath.length + 1).split('/')), content: JSON.stringify(documents.jwks, null, 2) },
      ];
      for (const file of files) {
        mkdirSync(dirname(file.path), { recursive: true });
        // Public documents (they are published on purpose): 0644.
        writeFileSync(file.path, `${file.content}\n`, { mode: 0o644 });
      }
      printResult({ issuer: documents.issuer, files: files.map((f) => f.path), keys: documents.jwks.keys.length }, globalOptions(cmd));
    });
}

/** Registers the outbound federation commands; run after {@link registerFederationCommands}. */
export function registerOutboundFederationCommands(program: Command): void {
  registerLinkCommands(program);
  registerExportCommand(program);
}
