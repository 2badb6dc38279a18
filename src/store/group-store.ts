import type { Kysely, Selectable } from 'kysely';
import type { Database, GroupTable } from './schema.js';
import type { Group, GroupStore } from './types.js';
import { atomically, idVariants, rowCount } from './kysely-helpers.js';

function toGroup(row: Selectable<GroupTable>): Group {
  return {
    objectId: row.object_id,
    tenantId: row.tenant_id,
    displayName: row.display_name,
    mailNickname: row.mail_nickname,
    description: row.description,
    createdAt: row.created_at,
  };
}

/** Groups and their direct members. Object and tenant ids are stored lower-case. */
export function createGroupStore(db: Kysely<Database>): GroupStore {
  return {
    async create(g) {
      await db
        .insertInto('groups')
        .values({
          object_id: g.objectId.toLowerCase(),
          tenant_id: g.tenantId.toLowerCase(),
          display_name: g.displayName,
          mail_nickname: g.mailNickname,
          description: g.description,
          created_at: g.createdAt,
        })
        .execute();
    },

    async get(objectId) {
      const row = await db.selectFrom('groups').selectAll().where('object_id', 'in', idVariants(objectId)).executeTakeFirst();
      return row === undefined ? undefined : toGroup(row);
    },

    async list(filter) {
      let query = db.selectFrom('groups').selectAll().where('tenant_id', '=', filter.tenantId.toLowerCase());
      if (filter.displayName !== undefined) {
        const displayName = filter.displayName;
        query = query.where((eb) => eb(eb.fn<string>('lower', ['display_name']), '=', eb.fn<string>('lower', [eb.val(displayName)])));
      }
      const rows = await query.orderBy('created_at').orderBy('object_id').execute();
      return rows.map(toGroup);
    },

    async delete(objectId) {
      const id = objectId.toLowerCase();
      return atomically(db, async (trx) => {
        await trx.deleteFrom('group_members').where('group_id', '=', id).execute();
        await trx.deleteFrom('group_members').where('member_id', '=', id).execute();
        const result = await trx.deleteFrom('groups').where('object_id', '=', id).executeTakeFirst();
        return rowCount(result.numDeletedRows) > 0;
      });
    },

    async addMember(m) {
      const result = await db
        .insertInto('group_members')
        .values({ group_id: m.groupId.toLowerCase(), member_id: m.memberId.toLowerCase(), tenant_id: m.tenantId.toLowerCase(), created_at: m.createdAt })
        .onConflict((oc) => oc.doNothing())
        .executeTakeFirst();
      return rowCount(result.numInsertedOrUpdatedRows) > 0;
    },

    async removeMember(groupId, memberId) {
      const result = await db
        .deleteFrom('group_members')
        .where('group_id', '=', groupId.toLowerCase())
        .where('member_id', '=', memberId.toLowerCase())
        .executeTakeFirst();
      return rowCount(result.numDeletedRows) > 0;
    },

    async listMembers(groupId) {
      const rows = await db
        .selectFrom('group_members')
        .select('member_id')
        .where('group_id', '=', groupId.toLowerCase())
        .orderBy('created_at')
        .orderBy('member_id')
        .execute();
      return rows.map((r) => r.member_id);
    },

    async listGroupsOf(memberId) {
      const rows = await db.selectFrom('group_members').select('group_id').where('member_id', '=', memberId.toLowerCase()).orderBy('group_id').execute();
      return rows.map((r) => r.group_id);
    },

    async listMemberships(tenantId) {
      const rows = await db
        .selectFrom('group_members')
        .select(['group_id', 'member_id'])
        .where('tenant_id', '=', tenantId.toLowerCase())
        .orderBy('group_id')
        .orderBy('member_id')
        .execute();
      return rows.map((r) => ({ groupId: r.group_id, memberId: r.member_id }));
    },

    async removeMemberEverywhere(memberId) {
      const result = await db.deleteFrom('group_members').where('member_id', '=', memberId.toLowerCase()).executeTakeFirst();
      return rowCount(result.numDeletedRows);
    },
  };
}
