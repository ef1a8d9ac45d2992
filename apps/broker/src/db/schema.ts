import type { Candidate, KeyChange, PortRange, RelayTcpInfo } from '@trellis/proto';
import { sql } from 'drizzle-orm';
import {
  type AnyPgColumn,
  bigint,
  bigserial,
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();

export const accounts = pgTable('accounts', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull().unique(),
  /** Grows by one per netmap change in the account; snapshots carry it so serials only go up. */
  netmapSerial: bigint('netmap_serial', { mode: 'number' }).notNull().default(0),
  /** Device names answered only to the account's own devices' addresses (else to anyone). */
  dnsMeshOnly: boolean('dns_mesh_only').notNull().default(false),
  /** A device a member signs in waits for an admin's approval before it joins the mesh. */
  requireDeviceApproval: boolean('require_device_approval').notNull().default(false),
  createdAt: createdAt(),
});

export const users = pgTable('users', {
  id: uuid('id').primaryKey().defaultRandom(),
  accountId: uuid('account_id')
    .notNull()
    .references(() => accounts.id, { onDelete: 'cascade' }),
  email: text('email').notNull().unique(),
  passwordHash: text('password_hash').notNull(),
  role: text('role', { enum: ['owner', 'admin', 'member'] }).notNull(),
  createdAt: createdAt(),
});

export const sessions = pgTable(
  'sessions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    tokenHash: text('token_hash').notNull().unique(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('sessions_user_idx').on(t.userId)],
);

export const setupKeys = pgTable(
  'setup_keys',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    accountId: uuid('account_id')
      .notNull()
      .references(() => accounts.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    keyHash: text('key_hash').notNull().unique(),
    prefix: text('prefix').notNull(),
    reusable: boolean('reusable').notNull(),
    usageLimit: integer('usage_limit'),
    usedCount: integer('used_count').notNull().default(0),
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
    /** Tags every device enrolled with this key gets (checked against the policy's tag owners). */
    tags: jsonb('tags').$type<string[]>().notNull().default(sql`'[]'::jsonb`),
    /** Name of the policy's CIDR block the devices get their addresses from; null: anywhere. */
    cidr: text('cidr'),
    /** Who created the key: the devices it enrolls belong to that user (`user:EMAIL` in the policy). */
    createdBy: uuid('created_by').references(() => users.id, { onDelete: 'set null' }),
    createdAt: createdAt(),
  },
  (t) => [index('setup_keys_account_idx').on(t.accountId)],
);

export const devices = pgTable(
  'devices',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    accountId: uuid('account_id')
      .notNull()
      .references(() => accounts.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    hostname: text('hostname').notNull(),
    os: text('os').notNull(),
    /** Null for a virtual device (a LAN host behind `viaDeviceId`, which has no key of its own). */
    publicKey: text('public_key').unique(),
    address: text('address').notNull(),
    /** A virtual device's gateway: a real device of the account; removing it removes its virtual devices. */
    viaDeviceId: uuid('via_device_id').references((): AnyPgColumn => devices.id, { onDelete: 'cascade' }),
    /** A virtual device's address on its gateway's LAN (the gateway DNATs `address` to it). */
    lanAddress: text('lan_address'),
    endpoints: jsonb('endpoints').$type<string[]>().notNull().default(sql`'[]'::jsonb`),
    /** Addresses learned about the device (reflexive from the reflectors, port-mapped from the agent). */
    netCandidates: jsonb('net_candidates').$type<Candidate[]>().notNull().default(sql`'[]'::jsonb`),
    /** NAT mapping behaviour, from two reflectors or the agent's netinfo; null when unknown. */
    mappingType: text('mapping_type', { enum: ['endpoint-independent', 'endpoint-dependent', 'unknown'] }),
    /** Id of the control connection that holds the device online; null when offline. */
    connectionId: text('connection_id'),
    lastSeen: timestamp('last_seen', { withTimezone: true }),
    /** Tags for the access policy (`tag:NAME`). */
    tags: jsonb('tags').$type<string[]>().notNull().default(sql`'[]'::jsonb`),
    /** Email of the user the device belongs to; null: nobody's (enrolled by an operator's key). */
    userEmail: text('user_email'),
    /** False while the device waits for an admin's approval: in no netmap, no name, no control connection. */
    approved: boolean('approved').notNull().default(true),
    /** How the key last changed (rotation proof or admin re-key), for peers that pinned the old one. */
    keyChange: jsonb('key_change').$type<KeyChange>(),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('devices_account_name_uq').on(t.accountId, t.name),
    uniqueIndex('devices_account_address_uq').on(t.accountId, t.address),
    // One LAN host is one virtual device per gateway (two gateways may each have a 192.168.1.100).
    uniqueIndex('devices_via_lan_uq').on(t.viaDeviceId, t.lanAddress),
    // A device has a key, or (virtual) a gateway and a LAN address: never a mix.
    check('devices_key_or_via_ck', sql`(${t.viaDeviceId} is null) = (${t.publicKey} is not null)`),
    check('devices_via_lan_ck', sql`(${t.viaDeviceId} is null) = (${t.lanAddress} is null)`),
  ],
);

/**
 * Routes a device advertises (subnet routes; 0.0.0.0/0: exit node) and which are approved. A row
 * approved by an admin outlives its advertisement (approved: used again once it comes back); any
 * other row exists only while advertised.
 */
export const deviceRoutes = pgTable(
  'device_routes',
  {
    deviceId: uuid('device_id')
      .notNull()
      .references(() => devices.id, { onDelete: 'cascade' }),
    accountId: uuid('account_id')
      .notNull()
      .references(() => accounts.id, { onDelete: 'cascade' }),
    prefix: text('prefix').notNull(),
    advertised: boolean('advertised').notNull(),
    approved: boolean('approved').notNull().default(false),
    /** Approved by the policy's autoApprovers, not by an admin (dropped with the advertisement). */
    autoApproved: boolean('auto_approved').notNull().default(false),
    /** The device reported its LAN for the prefix down. */
    down: boolean('down').notNull().default(false),
    /** First advertisement, kept while the device keeps advertising it: clients prefer the oldest. */
    advertisedAt: timestamp('advertised_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('device_routes_device_prefix_uq').on(t.deviceId, t.prefix),
    index('device_routes_account_idx').on(t.accountId),
  ],
);

/**
 * Devices signing in with the device authorization grant (RFC 8628). Both codes are stored only
 * as hashes; a row lives until it expires (then it is purged), and is spent once its device has
 * fetched its enrollment.
 */
export const deviceAuthorizations = pgTable(
  'device_authorizations',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    deviceCodeHash: text('device_code_hash').notNull().unique(),
    userCodeHash: text('user_code_hash').notNull().unique(),
    publicKey: text('public_key').notNull(),
    name: text('name'),
    hostname: text('hostname').notNull(),
    os: text('os').notNull(),
    endpoints: jsonb('endpoints').$type<string[]>().notNull().default(sql`'[]'::jsonb`),
    /** The request proved the device's private key (needed to enroll a key enrolled already). */
    proven: boolean('proven').notNull(),
    requestedFrom: text('requested_from').notNull(),
    state: text('state', { enum: ['pending', 'approved', 'denied', 'spent'] })
      .notNull()
      .default('pending'),
    /** Set on approval: the device enrolled for it, and who approved. */
    deviceId: uuid('device_id').references(() => devices.id, { onDelete: 'set null' }),
    decidedBy: uuid('decided_by').references(() => users.id, { onDelete: 'set null' }),
    intervalSeconds: integer('interval_seconds').notNull(),
    lastPolledAt: timestamp('last_polled_at', { withTimezone: true }),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('device_authorizations_expires_idx').on(t.expiresAt)],
);

/** Addresses of removed devices, held back from allocation for a grace period. */
export const releasedAddresses = pgTable(
  'released_addresses',
  {
    accountId: uuid('account_id')
      .notNull()
      .references(() => accounts.id, { onDelete: 'cascade' }),
    address: text('address').notNull(),
    /** The removed device's key: if that same machine enrolls again it gets its address back (null: virtual). */
    publicKey: text('public_key'),
    releasedAt: timestamp('released_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.accountId, t.address] })],
);

/** Relay tokens: account_id null is a shared (operator) relay. Only the token's hash is stored. */
export const relayTokens = pgTable(
  'relay_tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    accountId: uuid('account_id').references(() => accounts.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    tokenHash: text('token_hash').notNull().unique(),
    prefix: text('prefix').notNull(),
    createdAt: createdAt(),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
  },
  (t) => [index('relay_tokens_account_idx').on(t.accountId)],
);

/** One relay per token: what it last said in its hello. Its id is stable across reconnects. */
export const relays = pgTable('relays', {
  id: uuid('id').primaryKey().defaultRandom(),
  tokenId: uuid('token_id')
    .notNull()
    .unique()
    .references(() => relayTokens.id, { onDelete: 'cascade' }),
  name: text('name').notNull(),
  publicAddress: text('public_address').notNull(),
  ports: jsonb('ports').$type<PortRange>().notNull(),
  tcp: jsonb('tcp').$type<RelayTcpInfo>(),
  lastSeenAt: timestamp('last_seen_at', { withTimezone: true }),
  createdAt: createdAt(),
});

/** Every version of an account's access policy, verbatim (comments included); the highest is in force. */
export const policies = pgTable(
  'policies',
  {
    accountId: uuid('account_id')
      .notNull()
      .references(() => accounts.id, { onDelete: 'cascade' }),
    version: integer('version').notNull(),
    text: text('text').notNull(),
    /** Who applied it (an email, or `cli` for the broker's admin socket). */
    appliedBy: text('applied_by').notNull(),
    /** Set when this version restored an earlier one. */
    rollbackOf: integer('rollback_of'),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.accountId, t.version] })],
);

/**
 * The audit log: one row per change, written in the change's own transaction. Who and what are
 * copied as they were (no foreign keys but the account's), so an event outlives its user or target.
 * account_id null: an operator-level change (a shared relay token, say). Details never hold a secret.
 */
export const auditEvents = pgTable(
  'audit_events',
  {
    /** Grows with every event: the order of the log and its paging cursor. */
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    accountId: uuid('account_id').references(() => accounts.id, { onDelete: 'cascade' }),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
    actorKind: text('actor_kind', { enum: ['user', 'cli', 'device', 'system', 'relay'] }).notNull(),
    actorUserId: uuid('actor_user_id'),
    actorEmail: text('actor_email'),
    clientAddress: text('client_address'),
    action: text('action').notNull(),
    targetKind: text('target_kind').notNull(),
    targetId: text('target_id'),
    targetName: text('target_name'),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`),
  },
  (t) => [
    index('audit_events_account_id_idx').on(t.accountId, t.id.desc()),
    index('audit_events_at_idx').on(t.at),
  ],
);

export type AccountRow = typeof accounts.$inferSelect;
export type UserRow = typeof users.$inferSelect;
export type SetupKeyRow = typeof setupKeys.$inferSelect;
export type DeviceRow = typeof devices.$inferSelect;
export type DeviceRouteRow = typeof deviceRoutes.$inferSelect;
export type DeviceAuthorizationRow = typeof deviceAuthorizations.$inferSelect;
export type PolicyRow = typeof policies.$inferSelect;
export type RelayTokenRow = typeof relayTokens.$inferSelect;
export type RelayRow = typeof relays.$inferSelect;
export type AuditEventRow = typeof auditEvents.$inferSelect;

/**
 * The broker's static X25519 key, shared by every instance on one database so that any instance
 * can authenticate any device. Mirrored in `<data-dir>/broker.key`.
 */
export const brokerIdentity = pgTable('broker_identity', {
  id: integer('id').primaryKey().default(1),
  privateKey: text('private_key').notNull(),
  createdAt: createdAt(),
});

/**
 * One row per live broker instance sharing this database: its lease. A row whose expires_at has
 * passed (database time) belongs to a dead instance; one survivor deletes it and takes its devices
 * offline. Control connection ids start with `<id>:`.
 */
export const brokerInstances = pgTable('broker_instances', {
  id: text('id').primaryKey(),
  url: text('url').notNull(),
  version: text('version').notNull(),
  startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
});

export type BrokerInstanceRow = typeof brokerInstances.$inferSelect;
