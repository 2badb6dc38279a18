/**
 * Workload identity federation, inbound:
 *
 * - `openmsi identity federated-credential create|list|show|update|delete` (as `az identity federated-credential`),
 * - `openmsi ad app federated-credential create|list|show|update|delete` (as `az ad app federated-credential`),
 * - `openmsi federation issuer set|show|list|delete`: where an external issuer's keys come from (discovery,
 *   a JWKS URL or a static JWKS), its CA, and the algorithms it may sign with. docs/federation.md.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { bodyOf, withClient, globalOptions, type ManagementClient } from '../api-client.js';
import { column, printResult } from '../output.js';
import { seg } from './shared.js';

const UAMI = 'providers/Microsoft.ManagedIdentity/userAssignedIdentities';
const API_VERSION = '2023-01-31';
const DEFAULT_AUDIENCE = 'api://AzureADTokenExchange';

interface ArmFic {
  id: string;
  name: string;
  type: string;
  properties: { issuer: string; subject: string | null; audiences: string[] };
  systemData?: unknown;
}

/** az's view: `properties` flattened, `resourceGroup` added. */
function azView(fic: ArmFic): Record<string, unknown> {
  return {
    audiences: fic.properties.audiences,
    id: fic.id,
    issuer: fic.properties.issuer,
    name: fic.name,
    resourceGroup: /\/resourceGroups\/([^/]+)\//i.exec(fic.id)?.[1] ?? null,
    subject: fic.properties.subject,
    systemData: fic.systemData ?? null,
    type: fic.type,
  };
}

const FIC_COLUMNS = [column('Issuer', 'issuer'), column('Name', 'name'), column('ResourceGroup', 'resourceGroup'), column('Subject', 'subject')];
const APP_FIC_COLUMNS = [column('Name', 'name'), column('Issuer', 'issuer'), column('Subject', 'subject')];

interface FicAddress {
  identityName: string;
  resourceGroup: string;
  name?: string;
}

function ficPath(client: ManagementClient, opts: FicAddress, name?: string): string {
  const base = `${client.subscriptionPath()}/resourceGroups/${seg(opts.resourceGroup)}/${UAMI}/${seg(opts.identityName)}/federatedIdentityCredentials`;
  return name === undefined ? base : `${base}/${seg(name)}`;
}

/** `--parameters`: inline JSON, `@file`, or (as az) the path of a JSON file. */
export function readParameters(value: string): Record<string, unknown> {
  let text = value;
  const path = value.startsWith('@') ? value.slice(1) : existsSync(value) ? value : undefined;
  if (path !== undefined) {
    try {
      text = readFileSync(resolve(path), 'utf8');
    } catch (err) {
      throw new Error(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error('--parameters must be JSON, @file or the path of a JSON file');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('--parameters must be a JSON object');
  return parsed as Record<string, unknown>;
}

/** A file's contents for `@file`, the value itself otherwise. */
function fileOrValue(value: string): string {
  if (!value.startsWith('@')) return value;
  const path = resolve(value.slice(1));
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

function registerIdentityFederatedCredentials(program: Command): void {
  const identity = program.commands.find((c) => c.name() === 'identity');
  if (identity === undefined) throw new Error('register the `identity` command first');
  const fic = identity
    .command('federated-credential')
    .description("Manage a user-assigned identity's federated identity credentials: external tokens (Kubernetes, GitHub Actions) it trusts.")
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi identity federated-credential create --identity-name app-id -g app-rg -n cluster-1 --issuer https://oidc.example/cluster-1 --subject system:serviceaccount:default:app\n  openmsi identity federated-credential list --identity-name app-id -g app-rg -o table',
    );
  const address = (c: Command, withName: boolean) => {
    c.requiredOption('--identity-name <name>', 'the user-assigned identity').requiredOption('-g, --resource-group <group>', 'resource group');
    if (withName) c.requiredOption('-n, --name <name>', 'the federated credential (3-120 letters, digits, - and _)');
    return c;
  };

  for (const verb of ['create', 'update'] as const) {
    const c = address(fic.command(verb), true).description(
      verb === 'create'
        ? 'Create a federated identity credential (or replace the one of that name).'
        : 'Update a federated identity credential: what is given replaces what it had.',
    );
    const issuerHelp = "the external issuer, exactly as its tokens' iss (https://)";
    const subjectHelp = "the external token's sub, exactly (case-sensitive)";
    if (verb === 'create') c.requiredOption('--issuer <url>', issuerHelp).requiredOption('--subject <subject>', subjectHelp);
    else c.option('--issuer <url>', issuerHelp).option('--subject <subject>', subjectHelp);
    c.option('--audiences <audiences...>', `the audience the external token must carry (default ${DEFAULT_AUDIENCE})`).action(
      async (opts: FicAddress & { name: string; issuer?: string; subject?: string; audiences?: string[] }, cmd: Command) => {
        const result = await withClient(cmd, async (client) => {
          let properties: Record<string, unknown> = { audiences: [DEFAULT_AUDIENCE] };
          if (verb === 'update') properties = bodyOf(await client.arm<ArmFic>('GET', ficPath(client, opts, opts.name), { apiVersion: API_VERSION })).properties;
          properties = {
            ...properties,
            ...(opts.issuer === undefined ? {} : { issuer: opts.issuer }),
            ...(opts.subject === undefined ? {} : { subject: opts.subject }),
            ...(opts.audiences === undefined ? {} : { audiences: opts.audiences }),
          };
          const response = await client.arm<ArmFic>('PUT', ficPath(client, opts, opts.name), { apiVersion: API_VERSION, body: { properties } });
          return azView(bodyOf(response));
        });
        printResult(result, globalOptions(cmd), FIC_COLUMNS);
      },
    );
  }

  address(fic.command('show'), true)
    .description('Show a federated identity credential.')
    .action(async (opts: FicAddress & { name: string }, cmd: Command) => {
      const result = await withClient(cmd, async (client) =>
        azView(bodyOf(await client.arm<ArmFic>('GET', ficPath(client, opts, opts.name), { apiVersion: API_VERSION }))),
      );
      printResult(result, globalOptions(cmd), FIC_COLUMNS);
    });

  address(fic.command('list'), false)
    .description("List a user-assigned identity's federated identity credentials.")
    .action(async (opts: FicAddress, cmd: Command) => {
      const result = await withClient(cmd, async (client) =>
        (bodyOf(await client.arm<{ value: ArmFic[] }>('GET', ficPath(client, opts), { apiVersion: API_VERSION })).value ?? []).map(azView),
      );
      printResult(result, globalOptions(cmd), FIC_COLUMNS);
    });

  address(fic.command('delete'), true)
    .description('Delete a federated identity credential: tokens it matched are refused at once.')
    .option('-y, --yes', 'do not prompt for confirmation (openmsi never prompts; accepted for az compatibility)')
    .action(async (opts: FicAddress & { name: string }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        await client.arm('DELETE', ficPath(client, opts, opts.name), { apiVersion: API_VERSION });
      });
    });
}

function registerAppFederatedCredentials(program: Command): void {
  const ad = program.commands.find((c) => c.name() === 'ad');
  if (ad === undefined) throw new Error('register the `ad` command (registerAdSpCommands) first');
  const app = ad.command('app').description('Manage applications (in openmsi, an application and its service principal are one object).');
  const fic = app
    .command('federated-credential')
    .description("Manage an application's federated identity credentials.")
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi ad app federated-credential create --id <appId> --parameters \'{"name":"main","issuer":"https://token.actions.githubusercontent.com","subject":"repo:org/repo:ref:refs/heads/main","audiences":["api://AzureADTokenExchange"]}\'\n  openmsi ad app federated-credential create --id <appId> --parameters @credential.json',
    );
  const base = (id: string) => `/applications/${seg(id)}/federatedIdentityCredentials`;
  const idOption = (c: Command) => c.requiredOption('--id <id>', 'the application: its app (client) id or object id');
  const ficOption = (c: Command) => c.requiredOption('--federated-credential-id <idOrName>', 'the federated credential: its id or name');

  idOption(fic.command('create'))
    .description('Create a federated identity credential from JSON: name, issuer, subject (or claimsMatchingExpression), audiences, description.')
    .requiredOption('-p, --parameters <json>', 'JSON, @file, or the path of a JSON file')
    .action(async (opts: { id: string; parameters: string }, cmd: Command) => {
      const body = readParameters(opts.parameters);
      const result = await withClient(cmd, async (client) => bodyOf(await client.graph('POST', base(opts.id), { body })));
      printResult(result, globalOptions(cmd), APP_FIC_COLUMNS);
    });

  ficOption(idOption(fic.command('update')))
    .description('Update a federated identity credential with the JSON properties given.')
    .requiredOption('-p, --parameters <json>', 'JSON, @file, or the path of a JSON file')
    .action(async (opts: { id: string; federatedCredentialId: string; parameters: string }, cmd: Command) => {
      const body = readParameters(opts.parameters);
      await withClient(cmd, async (client) => {
        await client.graph('PATCH', `${base(opts.id)}/${seg(opts.federatedCredentialId)}`, { body });
      });
    });

  ficOption(idOption(fic.command('show')))
    .description('Show a federated identity credential.')
    .action(async (opts: { id: string; federatedCredentialId: string }, cmd: Command) => {
      const result = await withClient(cmd, async (client) => bodyOf(await client.graph('GET', `${base(opts.id)}/${seg(opts.federatedCredentialId)}`)));
      printResult(result, globalOptions(cmd), APP_FIC_COLUMNS);
    });

  idOption(fic.command('list'))
    .description("List an application's federated identity credentials.")
    .action(async (opts: { id: string }, cmd: Command) => {
      const result = await withClient(cmd, async (client) => bodyOf(await client.graph<{ value: unknown[] }>('GET', base(opts.id))).value ?? []);
      printResult(result, globalOptions(cmd), APP_FIC_COLUMNS);
    });

  ficOption(idOption(fic.command('delete')))
    .description('Delete a federated identity credential: tokens it matched are refused at once.')
    .action(async (opts: { id: string; federatedCredentialId: string }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        await client.graph('DELETE', `${base(opts.id)}/${seg(opts.federatedCredentialId)}`);
      });
    });
}

const ISSUER_COLUMNS = [column('Issuer', 'issuer'), column('KeySource', 'keySource'), column('JwksUri', 'jwksUri'), column('UpdatedAt', 'updatedAt')];

function registerIssuerCommands(program: Command): void {
  const federation = program
    .command('federation')
    .description('Workload identity federation: how openmsi trusts external issuers (Kubernetes clusters, GitHub Actions, ...).');
  const issuer = federation
    .command('issuer')
    .description(
      "An external issuer's key settings. Without one, its keys come from {issuer}/.well-known/openid-configuration -> jwks_uri over HTTPS with Node's trust (NODE_EXTRA_CA_CERTS adds a CA).",
    )
    .addHelpText(
      'after',
      '\nExamples:\n  kubectl get --raw /openid/v1/jwks > cluster.jwks\n  openmsi federation issuer set --issuer https://kubernetes.default.svc.cluster.local --jwks @cluster.jwks\n  openmsi federation issuer set --issuer https://oidc.example/c1 --jwks-uri https://oidc.example/c1/keys --ca @oidc-ca.pem\n  openmsi federation issuer set --issuer https://oidc.example/c1 --algorithms RS256 ES256',
    );
  const query = (url: string) => ({ query: { issuer: url } });

  issuer
    .command('set')
    .description("Set (replace) an issuer's key settings; they apply at once on every replica.")
    .requiredOption('--issuer <url>', 'the issuer, exactly as its tokens carry it in iss')
    .option('--jwks <jwks>', 'a static JWK Set (JSON or @file): no fetch at all')
    .option('--jwks-uri <url>', 'fetch the JWK Set here instead of through discovery')
    .option('--ca <pem>', "PEM CA certificates (or @file) to trust for this issuer's HTTPS endpoints instead of Node's trust")
    .option('--algorithms <algs...>', 'accepted signature algorithms: RS256 (default), ES256, PS256')
    .action(async (opts: { issuer: string; jwks?: string; jwksUri?: string; ca?: string; algorithms?: string[] }, cmd: Command) => {
      let jwks: unknown;
      if (opts.jwks !== undefined) {
        try {
          jwks = JSON.parse(fileOrValue(opts.jwks));
        } catch {
          throw new Error('--jwks must be a JWK Set (JSON) or @file');
        }
      }
      const body = {
        issuer: opts.issuer,
        ...(jwks === undefined ? {} : { jwks }),
        ...(opts.jwksUri === undefined ? {} : { jwksUri: opts.jwksUri }),
        ...(opts.ca === undefined ? {} : { ca: fileOrValue(opts.ca) }),
        ...(opts.algorithms === undefined ? {} : { algorithms: opts.algorithms }),
      };
      const result = await withClient(cmd, async (client) => bodyOf(await client.openmsi('PUT', '/federationIssuers', { body })));
      printResult(result, globalOptions(cmd), ISSUER_COLUMNS);
    });

  issuer
    .command('show')
    .description("Show an issuer's key settings.")
    .requiredOption('--issuer <url>', 'the issuer')
    .action(async (opts: { issuer: string }, cmd: Command) => {
      const result = await withClient(cmd, async (client) => bodyOf(await client.openmsi('GET', '/federationIssuers', query(opts.issuer))));
      printResult(result, globalOptions(cmd), ISSUER_COLUMNS);
    });

  issuer
    .command('list')
    .description('List the issuers that have key settings.')
    .action(async (_opts: unknown, cmd: Command) => {
      const result = await withClient(cmd, async (client) => bodyOf(await client.openmsi<{ value: unknown[] }>('GET', '/federationIssuers')).value ?? []);
      printResult(result, globalOptions(cmd), ISSUER_COLUMNS);
    });

  issuer
    .command('delete')
    .description("Delete an issuer's key settings: its keys come from discovery again.")
    .requiredOption('--issuer <url>', 'the issuer')
    .action(async (opts: { issuer: string }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        await client.openmsi('DELETE', '/federationIssuers', query(opts.issuer));
      });
    });
}

/** Registers the federation commands; run after `identity` and `ad` are registered. */
export function registerFederationCommands(program: Command): void {
  registerIdentityFederatedCredentials(program);
  registerAppFederatedCredentials(program);
  registerIssuerCommands(program);
}
