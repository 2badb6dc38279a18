import type { Kysely, Selectable } from 'kysely';
import type { Database, VaultSecretTable, VaultSecretVersionTable } from './schema.js';
import { sql } from 'kysely';
import { secretChangeKey, type SecretEntry, type SecretVersion, type Tags, type VaultObjectStore } from './types.js';
import { atomically, fromJson, rowCount, toJson } from './kysely-helpers.js';
import type { NotificationHooks } from './rbac-version-store.js';

type SecretRow = Selectable<VaultSecretTable>;
type VersionRow = Selectable<VaultSecretVersionTable>;

function toVersion(row: VersionRow, name: string): SecretVersion {
  return {
    vaultId: row.vault_id,
    name,
    version: row.version,
    sealedValue: row.sealed_value,
    contentType: row.content_type,
    tags: row.tags === null ? null : fromJson<Tags>(row.tags),
    enabled: row.enabled !== 0,
    notBefore: row.not_before,
    expires: row.expires,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toEntry(secret: SecretRow, latest: VersionRow): SecretEntry {
  return {
    vaultId: secret.vault_id,
    name: secret.name,
    deletedAt: secret.deleted_at,
    scheduledPurgeAt: secret.scheduled_purge_at,
    latest: toVersion(latest, secret.name),
  };
}

function versionRow(v: SecretVersion): VersionRow {
  return {
    vault_id: v.vaultId,
    name_key: v.name.toLowerCase(),
    version: v.version,
    sealed_value: v.sealedValue,
    content_type: v.contentType,
    tags: v.tags === null ? null : toJson(v.tags),
    enabled: v.enabled ? 1 : 0,
    not_before: v.notBefore,
    expires: v.expires,
    created_at: v.createdAt,
    updated_at: v.updatedAt,
  };
}

/**
 * The tables and change channel of one kind of vault object. Both kinds' tables have the same columns (the
 * key row adds its rotation policy, which this store never touches), so the queries below name the secret
 * tables for their types and run on whichever pair `kind` gives.
 */
export interface VaultObjectKind {
  entries: 'vault_secrets' | 'vault_keys';
  versions: 'vault_secret_versions' | 'vault_key_versions';
  channel: string;
}

/**
 * Versioned objects of vaults (secrets, keys): a row per name (its latest version and soft-delete state) and a
 * row per version (the sealed value and attributes). Names are stored as first set and looked up by their
 * lower-case key; a read is one join on primary keys.
 */
export function createVaultObjectStore(db: Kysely<Database>, kind: VaultObjectKind, hooks?: NotificationHooks): VaultObjectStore {
  const ENTRIES = kind.entries as 'vault_secrets';
  const VERSIONS = kind.versions as 'vault_secret_versions';
  const ENTRIES_AS_S = `${kind.entries} as s` as 'vault_secrets as s';
  const VERSIONS_AS_V = `${kind.versions} as v` as 'vault_secret_versions as v';
  const CHANNEL = kind.channel;

  /**
   * Runs a write atomically and announces the objects it changed: `pg_notify` in the writing transaction on
   * PostgreSQL (other replicas hear it when, and only if, it commits), this process's listeners after the
   * commit (a reader that re-reads on the notice must see the new row).
   */
  async function writing<T>(fn: (trx: Kysely<Database>, changed: (vaultId: string, nameKey: string) => Promise<void>) => Promise<T>): Promise<T> {
    const keys: string[] = [];
    const result = await atomically(db, (trx) =>
      fn(trx, async (vaultId, nameKey) => {
        const key = secretChangeKey(vaultId, nameKey);
        keys.push(key);
        if (hooks?.dialect === 'postgres') await sql`select pg_notify(${CHANNEL}, ${key})`.execute(trx);
      }),
    );
    for (const key of new Set(keys)) hooks?.published(CHANNEL, key);
    return result;
  }

  /** The secret row and one version (its latest unless `version` is given); soft-deleted ones only with `deleted`. */
  async function read(trx: Kysely<Database>, vaultId: string, name: string, deleted: boolean, version?: string) {
    const nameKey = name.toLowerCase();
    let query = trx
      .selectFrom(ENTRIES_AS_S)
      .innerJoin(VERSIONS_AS_V, (join) => {
        const on = join.onRef('v.vault_id', '=', 's.vault_id').onRef('v.name_key', '=', 's.name_key');
        return version === undefined ? on.onRef('v.version', '=', 's.latest_version') : on.on('v.version', '=', version.toLowerCase());
      })
      .selectAll('v')
      .select(['s.name', 's.latest_version', 's.deleted_at as s_deleted_at', 's.scheduled_purge_at as s_scheduled_purge_at'])
      .where('s.vault_id', '=', vaultId)
      .where('s.name_key', '=', nameKey);
    query = deleted ? query.where('s.deleted_at', 'is not', null) : query.where('s.deleted_at', 'is', null);
    const row = await query.executeTakeFirst();
    if (row === undefined) return undefined;
    const secret: SecretRow = {
      vault_id: row.vault_id,
      name_key: row.name_key,
      name: row.name,
      latest_version: row.latest_version,
      deleted_at: row.s_deleted_at,
      scheduled_purge_at: row.s_scheduled_purge_at,
    };
    return { secret, version: row as VersionRow };
  }

  async function listEntries(trx: Kysely<Database>, vaultId: string, options: { deleted: boolean; afterName?: string; limit: number }): Promise<SecretEntry[]> {
    let query = trx
      .selectFrom(ENTRIES_AS_S)
      .innerJoin(VERSIONS_AS_V, (join) =>
        join.onRef('v.vault_id', '=', 's.vault_id').onRef('v.name_key', '=', 's.name_key').onRef('v.version', '=', 's.latest_version'),
      )
      .selectAll('v')
      .select(['s.name', 's.latest_version', 's.deleted_at as s_deleted_at', 's.scheduled_purge_at as s_scheduled_purge_at'])
      .where('s.vault_id', '=', vaultId);
    query = options.deleted ? query.where('s.deleted_at', 'is not', null) : query.where('s.deleted_at', 'is', null);
    if (options.afterName !== undefined) query = query.where('s.name_key', '>', options.afterName.toLowerCase());
    const rows = await query.orderBy('s.name_key').limit(options.limit).execute();
    return rows.map((row) =>
      toEntry(
        {
          vault_id: row.vault_id,
          name_key: row.name_key,
          name: row.name,
          latest_version: row.latest_version,
          deleted_at: row.s_deleted_at,
          scheduled_purge_at: row.s_scheduled_purge_at,
        },
        row,
      ),
    );
  }

  async function deleteSecret(trx: Kysely<Database>, vaultId: string, nameKey: string): Promise<void> {
    await trx.deleteFrom(VERSIONS).where('vault_id', '=', vaultId).where('name_key', '=', nameKey).execute();
    await trx.deleteFrom(ENTRIES).where('vault_id', '=', vaultId).where('name_key', '=', nameKey).execute();
  }

  /**
   * Moves a secret between active and soft-deleted, only from the state named; the entry in its new state, or
   * undefined when it was not in the state named.
   */
  function setDeletion(
    vaultId: string,
    name: string,
    values: { deleted_at: number | null; scheduled_purge_at: number | null },
    from: 'active' | 'deleted',
  ): Promise<SecretEntry | undefined> {
    return writing(async (trx, changed) => {
      const result = await trx
        .updateTable(ENTRIES)
        .set(values)
        .where('vault_id', '=', vaultId)
        .where('name_key', '=', name.toLowerCase())
        .where('deleted_at', from === 'active' ? 'is' : 'is not', null)
        .executeTakeFirst();
      if (rowCount(result.numUpdatedRows) === 0) return undefined;
      await changed(vaultId, name);
      const found = await read(trx, vaultId, name, from === 'active');
      return found === undefined ? undefined : toEntry(found.secret, found.version);
    });
  }

  return {
    async addVersion(version, options): Promise<'added' | 'deleted' | 'conflict'> {
      const nameKey = version.name.toLowerCase();
      return writing(async (trx, changed) => {
        if (options?.ifLatest !== undefined) {
          // Compare-and-set on the entry row first: a concurrent writer holds the row until it commits, after which
          // this update sees its latest version and changes nothing.
          const claimed = await trx
            .updateTable(ENTRIES)
            .set({ latest_version: version.version })
            .where('vault_id', '=', version.vaultId)
            .where('name_key', '=', nameKey)
            .where('latest_version', '=', options.ifLatest)
            .where('deleted_at', 'is', null)
            .executeTakeFirst();
          if (rowCount(claimed.numUpdatedRows) === 0) return 'conflict' as const;
          await trx.insertInto(VERSIONS).values(versionRow(version)).execute();
          await changed(version.vaultId, nameKey);
          return 'added' as const;
        }
        const secret = await trx
          .selectFrom(ENTRIES)
          .select(['deleted_at'])
          .where('vault_id', '=', version.vaultId)
          .where('name_key', '=', nameKey)
          .executeTakeFirst();
        if (secret !== undefined && secret.deleted_at !== null) return 'deleted' as const;
        await trx.insertInto(VERSIONS).values(versionRow(version)).execute();
        if (secret === undefined) {
          await trx
            .insertInto(ENTRIES)
            .values({
              vault_id: version.vaultId,
              name_key: nameKey,
              name: version.name,
              latest_version: version.version,
              deleted_at: null,
              scheduled_purge_at: null,
            })
            .execute();
        } else {
          await trx
            .updateTable(ENTRIES)
            .set({ latest_version: version.version })
            .where('vault_id', '=', version.vaultId)
            .where('name_key', '=', nameKey)
            .execute();
        }
        await changed(version.vaultId, nameKey);
        return 'added' as const;
      });
    },

    async get(vaultId, name, version) {
      const found = await read(db, vaultId, name, false, version);
      if (found === undefined) return undefined;
      const entry = version === undefined || found.version.version === found.secret.latest_version ? toEntry(found.secret, found.version) : undefined;
      if (entry !== undefined) return { entry, version: entry.latest };
      const latest = await read(db, vaultId, name, false);
      if (latest === undefined) return undefined;
      return { entry: toEntry(latest.secret, latest.version), version: toVersion(found.version, found.secret.name) };
    },

    async update(vaultId, name, version, patch) {
      const nameKey = name.toLowerCase();
      return writing(async (trx, changed) => {
        const found = await read(trx, vaultId, name, false, version);
        if (found === undefined) return undefined;
        const set: Partial<VersionRow> = { updated_at: patch.updatedAt };
        if (patch.sealedValue !== undefined) set.sealed_value = patch.sealedValue;
        if (patch.contentType !== undefined) set.content_type = patch.contentType;
        if (patch.tags !== undefined) set.tags = patch.tags === null ? null : toJson(patch.tags);
        if (patch.enabled !== undefined) set.enabled = patch.enabled ? 1 : 0;
        if (patch.notBefore !== undefined) set.not_before = patch.notBefore;
        if (patch.expires !== undefined) set.expires = patch.expires;
        await trx
          .updateTable(VERSIONS)
          .set(set)
          .where('vault_id', '=', vaultId)
          .where('name_key', '=', nameKey)
          .where('version', '=', found.version.version)
          .execute();
        await changed(vaultId, nameKey);
        return toVersion({ ...found.version, ...set }, found.secret.name);
      });
    },

    list(vaultId, options) {
      return listEntries(db, vaultId, options);
    },

    async listVersions(vaultId, name, options) {
      const nameKey = name.toLowerCase();
      const secret = await db
        .selectFrom(ENTRIES)
        .select(['name'])
        .where('vault_id', '=', vaultId)
        .where('name_key', '=', nameKey)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (secret === undefined) return [];
      let query = db.selectFrom(VERSIONS).selectAll().where('vault_id', '=', vaultId).where('name_key', '=', nameKey);
      if (options.afterVersion !== undefined) query = query.where('version', '>', options.afterVersion.toLowerCase());
      const rows = await query.orderBy('version').limit(options.limit).execute();
      return rows.map((row) => toVersion(row, secret.name));
    },

    async allVersions(vaultId, name) {
      const nameKey = name.toLowerCase();
      const secret = await db
        .selectFrom(ENTRIES)
        .select(['name'])
        .where('vault_id', '=', vaultId)
        .where('name_key', '=', nameKey)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (secret === undefined) return [];
      const rows = await db
        .selectFrom(VERSIONS)
        .selectAll()
        .where('vault_id', '=', vaultId)
        .where('name_key', '=', nameKey)
        .orderBy('created_at')
        .orderBy('version')
        .execute();
      return rows.map((row) => toVersion(row, secret.name));
    },

    softDelete(vaultId, name, deletedAt, scheduledPurgeAt) {
      return setDeletion(vaultId, name, { deleted_at: deletedAt, scheduled_purge_at: scheduledPurgeAt }, 'active');
    },

    async getDeleted(vaultId, name) {
      const found = await read(db, vaultId, name, true);
      return found === undefined ? undefined : toEntry(found.secret, found.version);
    },

    recover(vaultId, name) {
      return setDeletion(vaultId, name, { deleted_at: null, scheduled_purge_at: null }, 'deleted');
    },

    async purge(vaultId, name) {
      const nameKey = name.toLowerCase();
      return writing(async (trx, changed) => {
        const secret = await trx.selectFrom(ENTRIES).select('deleted_at').where('vault_id', '=', vaultId).where('name_key', '=', nameKey).executeTakeFirst();
        if (secret === undefined || secret.deleted_at === null) return false;
        await deleteSecret(trx, vaultId, nameKey);
        await changed(vaultId, nameKey);
        return true;
      });
    },

    // `rotationPolicy`: keys only (KeyStore.restore), written with the entry so a restored key never exists
    // without the policy its backup carried.
    async restore(versions, rotationPolicy?: string | null) {
      const first = versions[0];
      if (first === undefined) throw new TypeError('restore() needs at least one version');
      const nameKey = first.name.toLowerCase();
      if (versions.some((v) => v.vaultId !== first.vaultId || v.name.toLowerCase() !== nameKey)) {
        throw new TypeError('restore(): every version must belong to one secret of one vault');
      }
      return writing(async (trx, changed) => {
        const existing = await trx.selectFrom(ENTRIES).select('name').where('vault_id', '=', first.vaultId).where('name_key', '=', nameKey).executeTakeFirst();
        if (existing !== undefined) return 'exists' as const;
        for (const v of versions) await trx.insertInto(VERSIONS).values(versionRow(v)).execute();
        const latest = [...versions].sort((a, b) => a.createdAt - b.createdAt || (a.version < b.version ? -1 : 1)).at(-1)!;
        await trx
          .insertInto(ENTRIES)
          .values({
            vault_id: first.vaultId,
            name_key: nameKey,
            name: first.name,
            latest_version: latest.version,
            deleted_at: null,
            scheduled_purge_at: null,
            // The column exists on vault_keys only; ENTRIES is typed as vault_secrets.
            ...((rotationPolicy ?? null) === null ? {} : ({ rotation_policy: rotationPolicy } as object)),
          })
          .execute();
        await changed(first.vaultId, nameKey);
        return 'restored' as const;
      });
    },

    async purgeDue(now) {
      return writing(async (trx, changed) => {
        const due = await trx
          .selectFrom(ENTRIES)
          .select(['vault_id', 'name_key'])
          .where('deleted_at', 'is not', null)
          .where('scheduled_purge_at', '<=', now)
          .execute();
        for (const secret of due) {
          await deleteSecret(trx, secret.vault_id, secret.name_key);
          await changed(secret.vault_id, secret.name_key);
        }
        return due.length;
      });
    },
  };
}
