/**
 * `openmsi role definition list|show|create|update|delete` and `openmsi role assignment create|list|delete`,
 * shaped like `az role` (az's flattened JSON, its table columns). `--assignee` takes an object id, an app id,
 * or a name (service principal or managed identity display name, or group display name).
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { isGuid, newGuid } from '../../shared/ids.js';
import { bodyOf, globalOptions, withClient, type ManagementClient } from '../api-client.js';
import { column, printResult } from '../output.js';

// The wire shapes the management API answers with (type-only: the CLI loads no server code).
import type { ArmRoleAssignment } from '../../management/role-assignments.js';
import type { ArmRoleDefinition } from '../../management/role-definitions.js';

const API = '2022-04-01';
const PROVIDER = '/providers/Microsoft.Authorization';

interface Principal {
  id: string;
  displayName: string;
  kind: 'ServicePrincipal' | 'Group' | 'User';
  /** az's principalName: the first service principal name (the app id) for principals, the UPN for users, the display name for groups. */
  principalName: string;
}

const DEFINITION_COLUMNS = [column('Name', 'roleName'), column('Type', 'roleType'), column('Description', 'description')];
const ASSIGNMENT_COLUMNS = [column('Principal', 'principalName'), column('Role', 'roleDefinitionName'), column('Scope', 'scope')];

/** az's flattened role definition. */
function definitionOutput(d: ArmRoleDefinition): Record<string, unknown> {
  const p = d.properties;
  return {
    assignableScopes: p.assignableScopes,
    createdBy: p.createdBy,
    createdOn: p.createdOn,
    description: p.description,
    id: d.id,
    name: d.name,
    permissions: p.permissions,
    roleName: p.roleName,
    roleType: p.type,
    type: d.type,
    updatedBy: p.updatedBy,
    updatedOn: p.updatedOn,
  };
}

/** az's flattened role assignment (with principalName and roleDefinitionName when known, as `az role assignment list` shows). */
function assignmentOutput(a: ArmRoleAssignment, names?: { principalName?: string; roleDefinitionName?: string }): Record<string, unknown> {
  const p = a.properties;
  const rg = /^\/subscriptions\/[^/]+\/resourceGroups\/([^/]+)/i.exec(p.scope)?.[1];
  return {
    condition: p.condition,
    conditionVersion: p.conditionVersion,
    createdBy: p.createdBy,
    createdOn: p.createdOn,
    delegatedManagedIdentityResourceId: p.delegatedManagedIdentityResourceId,
    description: p.description,
    id: a.id,
    name: a.name,
    principalId: p.principalId,
    ...(names === undefined ? {} : { principalName: names.principalName ?? '' }),
    principalType: p.principalType,
    ...(rg === undefined ? {} : { resourceGroup: rg }),
    roleDefinitionId: p.roleDefinitionId,
    ...(names === undefined ? {} : { roleDefinitionName: names.roleDefinitionName ?? '' }),
    scope: p.scope,
    type: a.type,
    updatedBy: p.updatedBy,
    updatedOn: p.updatedOn,
  };
}

const quote = (s: string) => `'${s.replace(/'/g, "''")}'`;
const scopePath = (scope: string) => (scope === '/' ? '' : scope.replace(/\/$/, ''));

/** The default scope of list commands: the current subscription. */
function subscriptionScope(client: ManagementClient): string {
  return `/subscriptions/${client.subscriptionId}`;
}

async function listDefinitions(client: ManagementClient, scope: string, roleName?: string): Promise<ArmRoleDefinition[]> {
  const response = await client.arm<{ value: ArmRoleDefinition[] }>('GET', `${scopePath(scope)}${PROVIDER}/roleDefinitions`, {
    apiVersion: API,
    ...(roleName === undefined ? {} : { query: { $filter: `roleName eq ${quote(roleName)}` } }),
  });
  return bodyOf(response).value;
}

/** A role by name or GUID (or ARM id); an error naming it when there is none. */
async function resolveRole(client: ManagementClient, role: string): Promise<ArmRoleDefinition> {
  const scope = subscriptionScope(client);
  const guid = role.split('/').pop() ?? role;
  if (isGuid(guid)) {
    const response = await client.arm<ArmRoleDefinition>('GET', `${scope}${PROVIDER}/roleDefinitions/${guid}`, { apiVersion: API, allowStatus: [404] });
    if (response.status === 200 && response.body !== undefined) return response.body;
  }
  const found = await listDefinitions(client, scope, role);
  const first = found[0];
  if (first === undefined) throw new Error(`Role '${role}' doesn't exist.`);
  if (found.length > 1) throw new Error(`More than one role matches the given name '${role}'. Please pick an id from '${found.map((f) => f.id).join(', ')}'`);
  return first;
}

/** `--assignee`: object id or app id of a service principal, object id or user principal name of a user, object id of a group, or a display name. */
async function resolveAssignee(client: ManagementClient, assignee: string): Promise<Principal> {
  const asUser = async (): Promise<Principal | undefined> => {
    const user = await client.graph<{ id: string; displayName: string; userPrincipalName: string }>('GET', `/users/${encodeURIComponent(assignee)}`, {
      allowStatus: [404, 400],
    });
    return user.status === 200 && user.body !== undefined
      ? { id: user.body.id, displayName: user.body.displayName, kind: 'User', principalName: user.body.userPrincipalName }
      : undefined;
  };
  // A user principal name (as az takes one): `name@domain`.
  if (assignee.includes('@')) {
    const user = await asUser();
    if (user !== undefined) return user;
    throw new Error(`Cannot find user or service principal in graph database for '${assignee}'.`);
  }
  if (isGuid(assignee)) {
    const sp = await client.graph<{ id: string; displayName: string; appId: string }>('GET', `/servicePrincipals/${assignee}`, { allowStatus: [404, 400] });
    if (sp.status === 200 && sp.body !== undefined)
      return { id: sp.body.id, displayName: sp.body.displayName, kind: 'ServicePrincipal', principalName: sp.body.appId };
    const group = await client.graph<{ id: string; displayName: string }>('GET', `/groups/${assignee}`, { allowStatus: [404, 400] });
    if (group.status === 200 && group.body !== undefined)
      return { id: group.body.id, displayName: group.body.displayName, kind: 'Group', principalName: group.body.displayName };
    const user = await asUser();
    if (user !== undefined) return user;
    throw new Error(`Cannot find user or service principal in graph database for '${assignee}'.`);
  }
  const sps = bodyOf(
    await client.graph<{ value: Array<{ id: string; displayName: string; appId: string }> }>('GET', '/servicePrincipals', {
      query: { $filter: `displayName eq ${quote(assignee)}` },
    }),
  ).value;
  const groups = bodyOf(
    await client.graph<{ value: Array<{ id: string; displayName: string }> }>('GET', '/groups', { query: { $filter: `displayName eq ${quote(assignee)}` } }),
  ).value;
  const matches: Principal[] = [
    ...sps.map((s) => ({ id: s.id, displayName: s.displayName, kind: 'ServicePrincipal' as const, principalName: s.appId })),
    ...groups.map((g) => ({ id: g.id, displayName: g.displayName, kind: 'Group' as const, principalName: g.displayName })),
  ];
  if (matches.length === 0) throw new Error(`Cannot find user or service principal in graph database for '${assignee}'.`);
  if (matches.length > 1)
    throw new Error(`Found multiple objects named '${assignee}': ${matches.map((m) => `${m.kind} ${m.id}`).join(', ')}. Use the object id.`);
  return matches[0] as Principal;
}

/** `--role-definition`: JSON text or `@file`, in az's spelling (`Name`, `Actions`, ... or camelCase). */
function readRoleDefinition(value: string): Record<string, unknown> {
  let text = value;
  if (value.startsWith('@')) {
    const path = resolve(value.slice(1));
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`cannot read the role definition file ${path}: ${(err as Error).message}`, { cause: err });
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error('--role-definition must be JSON (or @file holding JSON)');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('--role-definition must be a JSON object');
  // Keys are case-insensitive, as az reads them.
  return Object.fromEntries(Object.entries(parsed as Record<string, unknown>).map(([k, v]) => [k.toLowerCase(), v]));
}

function definitionBody(def: Record<string, unknown>): { properties: Record<string, unknown> } {
  const roleName = def['name'] ?? def['rolename'];
  const arr = (k: string) => (def[k] === undefined ? [] : def[k]);
  const permissions = def['permissions'] ?? [
    { actions: arr('actions'), notActions: arr('notactions'), dataActions: arr('dataactions'), notDataActions: arr('notdataactions') },
  ];
  return {
    properties: {
      roleName,
      description: def['description'] ?? '',
      type: 'CustomRole',
      permissions,
      assignableScopes: def['assignablescopes'],
    },
  };
}

export function registerRoleCommands(program: Command): void {
  const role = program
    .command('role')
    .description('Manage Azure role-based access control: role definitions and role assignments.')
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi role assignment create --assignee <appId> --role Reader --scope /subscriptions/<sub>/resourceGroups/app-rg\n  openmsi role definition list --custom-role-only -o table',
    );

  // ------------------------------------------------------------------ definitions
  const definition = role.command('definition').description('Manage role definitions.');

  definition
    .command('list')
    .description("List role definitions: the built-in roles and this directory's custom roles.")
    .option('-n, --name <name>', 'only the role with this name (or GUID)')
    .option('--custom-role-only', 'only custom roles')
    .option('--scope <scope>', 'scope to list at (default: the subscription)')
    .addHelpText('after', '\nExamples:\n  openmsi role definition list --name Reader\n  openmsi role definition list --custom-role-only -o table')
    .action(async (opts: { name?: string; customRoleOnly?: boolean; scope?: string }, cmd: Command) => {
      const result = await withClient(cmd, async (client) => {
        const scope = opts.scope ?? subscriptionScope(client);
        let defs: ArmRoleDefinition[];
        if (opts.name !== undefined && isGuid(opts.name)) {
          const one = await client.arm<ArmRoleDefinition>('GET', `${scopePath(scope)}${PROVIDER}/roleDefinitions/${opts.name}`, {
            apiVersion: API,
            allowStatus: [404],
          });
          defs = one.status === 200 && one.body !== undefined ? [one.body] : [];
        } else {
          defs = await listDefinitions(client, scope, opts.name);
        }
        return defs.filter((d) => opts.customRoleOnly !== true || d.properties.type === 'CustomRole').map(definitionOutput);
      });
      printResult(result, globalOptions(cmd), DEFINITION_COLUMNS);
    });

  definition
    .command('show')
    .description('Show one role definition by name or GUID.')
    .requiredOption('-n, --name <name>', 'role name or GUID')
    .action(async (opts: { name: string }, cmd: Command) => {
      const result = await withClient(cmd, async (client) => definitionOutput(await resolveRole(client, opts.name)));
      printResult(result, globalOptions(cmd), DEFINITION_COLUMNS);
    });

  definition
    .command('create')
    .description('Create a custom role.')
    .requiredOption(
      '--role-definition <json>',
      'the role as JSON or @file: {"Name", "Description", "Actions", "NotActions", "DataActions", "NotDataActions", "AssignableScopes"}',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi role definition create --role-definition @vm-operator.json\n  openmsi role definition create --role-definition \'{"Name":"VM Operator","Actions":["Microsoft.Compute/virtualMachines/start/action"],"AssignableScopes":["/subscriptions/<sub>"]}\'',
    )
    .action(async (opts: { roleDefinition: string }, cmd: Command) => {
      const def = readRoleDefinition(opts.roleDefinition);
      const result = await withClient(cmd, async (client) => {
        const scopes = def['assignablescopes'];
        const first = Array.isArray(scopes) && typeof scopes[0] === 'string' ? scopes[0] : subscriptionScope(client);
        const id = typeof def['id'] === 'string' && isGuid(def['id']) ? def['id'] : newGuid();
        const response = await client.arm<ArmRoleDefinition>('PUT', `${scopePath(first)}${PROVIDER}/roleDefinitions/${id}`, {
          apiVersion: API,
          body: definitionBody(def),
        });
        return definitionOutput(bodyOf(response));
      });
      printResult(result, globalOptions(cmd), DEFINITION_COLUMNS);
    });

  definition
    .command('update')
    .description('Update a custom role, found by its "id"/"name" GUID or by its role name.')
    .requiredOption('--role-definition <json>', 'the role as JSON or @file (as for create; "id" or the name identifies it)')
    .action(async (opts: { roleDefinition: string }, cmd: Command) => {
      const def = readRoleDefinition(opts.roleDefinition);
      const result = await withClient(cmd, async (client) => {
        const key = [def['id'], def['name'], def['rolename']].find((v): v is string => typeof v === 'string');
        if (key === undefined) throw new Error('--role-definition must name the role to update ("Name" or "id")');
        const existing = await resolveRole(client, key);
        if (existing.properties.type !== 'CustomRole') throw new Error(`'${existing.properties.roleName}' is a built-in role and cannot be updated`);
        const merged: Record<string, unknown> = {
          ...def,
          name: def['rolename'] ?? (typeof def['name'] === 'string' && !isGuid(def['name']) ? def['name'] : existing.properties.roleName),
        };
        if (merged['assignablescopes'] === undefined) merged['assignablescopes'] = existing.properties.assignableScopes;
        if (merged['description'] === undefined) merged['description'] = existing.properties.description;
        const hasActions = ['actions', 'notactions', 'dataactions', 'notdataactions', 'permissions'].some((k) => merged[k] !== undefined);
        if (!hasActions) merged['permissions'] = existing.properties.permissions;
        const response = await client.arm<ArmRoleDefinition>('PUT', `${existing.id}`, { apiVersion: API, body: definitionBody(merged) });
        return definitionOutput(bodyOf(response));
      });
      printResult(result, globalOptions(cmd), DEFINITION_COLUMNS);
    });

  definition
    .command('delete')
    .description('Delete a custom role (refused while it is assigned).')
    .requiredOption('-n, --name <name>', 'role name or GUID')
    .action(async (opts: { name: string }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const existing = await resolveRole(client, opts.name);
        await client.arm('DELETE', existing.id, { apiVersion: API });
      });
    });

  // ------------------------------------------------------------------ assignments
  const assignment = role.command('assignment').description('Manage role assignments.');

  assignment
    .command('create')
    .description('Assign a role to a service principal, managed identity or group at a scope.')
    .requiredOption('--assignee <assignee>', 'object id, app id, user principal name, or display name of the principal')
    .requiredOption('--role <role>', 'role name or GUID')
    .requiredOption('--scope <scope>', 'scope: /, /subscriptions/<sub>[/resourceGroups/<rg>[/providers/...]]')
    .option('--assignee-principal-type <type>', 'User, ServicePrincipal or Group (checked against the directory)')
    .option('--assignee-object-id <id>', 'object id of the assignee (skips the name lookup)')
    .option('--description <text>', 'description of the assignment')
    .option('--condition <condition>', 'not supported: openmsi refuses ABAC conditions')
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi role assignment create --assignee <appId> --role "Managed Identity Contributor" --scope /subscriptions/<sub>/resourceGroups/app-rg\n  openmsi role assignment create --assignee ci-pipeline --role Reader --scope /subscriptions/<sub>',
    )
    .action(
      async (
        opts: {
          assignee: string;
          role: string;
          scope: string;
          assigneePrincipalType?: string;
          assigneeObjectId?: string;
          description?: string;
          condition?: string;
        },
        cmd: Command,
      ) => {
        const result = await withClient(cmd, async (client) => {
          const principalId = opts.assigneeObjectId ?? (await resolveAssignee(client, opts.assignee)).id;
          const roleDef = await resolveRole(client, opts.role);
          const response = await client.arm<ArmRoleAssignment>('PUT', `${scopePath(opts.scope)}${PROVIDER}/roleAssignments/${newGuid()}`, {
            apiVersion: API,
            body: {
              properties: {
                roleDefinitionId: roleDef.id,
                principalId,
                ...(opts.assigneePrincipalType === undefined ? {} : { principalType: opts.assigneePrincipalType }),
                ...(opts.description === undefined ? {} : { description: opts.description }),
                ...(opts.condition === undefined ? {} : { condition: opts.condition, conditionVersion: '2.0' }),
              },
            },
          });
          return assignmentOutput(bodyOf(response));
        });
        printResult(result, globalOptions(cmd), ASSIGNMENT_COLUMNS);
      },
    );

  /** Assignments matching the filters, with az's principalName and roleDefinitionName. */
  async function findAssignments(
    client: ManagementClient,
    opts: { assignee?: string; role?: string; scope?: string; all?: boolean; includeInherited?: boolean },
  ): Promise<Record<string, unknown>[]> {
    const principal = opts.assignee === undefined ? undefined : await resolveAssignee(client, opts.assignee);
    const roleDef = opts.role === undefined ? undefined : await resolveRole(client, opts.role);
    const scope = opts.scope ?? subscriptionScope(client);
    const filter = principal === undefined ? undefined : `principalId eq ${quote(principal.id)}`;
    const listed = bodyOf(
      await client.arm<{ value: ArmRoleAssignment[] }>('GET', `${scopePath(scope)}${PROVIDER}/roleAssignments`, {
        apiVersion: API,
        ...(filter === undefined ? {} : { query: { $filter: filter } }),
      }),
    ).value;
    const key = (s: string) => s.toLowerCase().replace(/\/$/, '') || '/';
    const roleGuid = (id: string) => (id.split('/').pop() ?? id).toLowerCase();
    const selected = listed.filter((a) => {
      if (roleDef !== undefined && roleGuid(a.properties.roleDefinitionId) !== roleDef.name.toLowerCase()) return false;
      if (opts.all === true) return true;
      if (opts.includeInherited === true) {
        const above = key(a.properties.scope);
        return above === '/' || key(scope) === above || key(scope).startsWith(`${above}/`);
      }
      return key(a.properties.scope) === key(scope);
    });
    const roleNames = new Map<string, string>();
    for (const d of await listDefinitions(client, subscriptionScope(client))) roleNames.set(d.name.toLowerCase(), d.properties.roleName);
    const principalNames = new Map<string, string>();
    for (const a of selected) {
      const id = a.properties.principalId;
      if (principalNames.has(id)) continue;
      const name = await resolveAssignee(client, id)
        .then((p) => p.principalName)
        .catch(() => '');
      principalNames.set(id, name);
    }
    return selected.map((a) =>
      assignmentOutput(a, {
        principalName: principalNames.get(a.properties.principalId) ?? '',
        roleDefinitionName: roleNames.get(roleGuid(a.properties.roleDefinitionId)) ?? '',
      }),
    );
  }

  assignment
    .command('list')
    .description('List role assignments (by default those at the subscription scope; --all for every scope in it).')
    .option('--assignee <assignee>', 'object id, app id, or display name of the principal')
    .option('--role <role>', 'role name or GUID')
    .option('--scope <scope>', 'only assignments at this scope')
    .option('--include-inherited', 'with --scope: also the assignments inherited from above')
    .option('--all', 'assignments at every scope in the subscription, and above it')
    .addHelpText('after', '\nExamples:\n  openmsi role assignment list --all -o table\n  openmsi role assignment list --assignee <appId> --all')
    .action(async (opts: { assignee?: string; role?: string; scope?: string; all?: boolean; includeInherited?: boolean }, cmd: Command) => {
      const result = await withClient(cmd, (client) => findAssignments(client, opts));
      printResult(result, globalOptions(cmd), ASSIGNMENT_COLUMNS);
    });

  assignment
    .command('delete')
    .description('Delete role assignments: by --ids, or all that match --assignee, --role and --scope.')
    .option('--ids <ids...>', 'role assignment ids')
    .option('--assignee <assignee>', 'object id, app id, or display name of the principal')
    .option('--role <role>', 'role name or GUID')
    .option('--scope <scope>', 'scope of the assignments (default: the subscription)')
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi role assignment delete --assignee <appId> --role Reader --scope /subscriptions/<sub>\n  openmsi role assignment delete --ids <id> <id>',
    )
    .action(async (opts: { ids?: string[]; assignee?: string; role?: string; scope?: string }, cmd: Command) => {
      if (opts.ids !== undefined && (opts.assignee !== undefined || opts.role !== undefined || opts.scope !== undefined)) {
        throw new Error('usage error: use --ids alone, or --assignee / --role / --scope');
      }
      if (opts.ids === undefined && opts.assignee === undefined && opts.role === undefined && opts.scope === undefined) {
        throw new Error('usage error: give --ids, or at least one of --assignee, --role, --scope');
      }
      await withClient(cmd, async (client) => {
        const ids = opts.ids ?? (await findAssignments(client, opts)).map((a) => a['id'] as string);
        if (ids.length === 0) throw new Error('No matched assignments were found to delete');
        for (const id of ids) await client.arm('DELETE', id, { apiVersion: API });
      });
    });
}
