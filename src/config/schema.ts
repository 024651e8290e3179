// The region file, declared once: every field, the rule it must follow (which
// is also the "expected ..." of its error), its default and its meaning. From
// this one declaration come the validation (parse.ts), the JSON Schema that
// `ferry schema` prints and editors use, and the README's configuration
// table (reference.ts). parse.ts turns a valid document into a RegionConfig.
import * as z from 'zod'
import { DURATION_GRAMMAR, parseDuration, parseSize, SIZE_GRAMMAR } from '../common/units.ts'

/** A field's documentation beyond its description: a default that is computed, not a constant. */
export interface FieldDoc {
  readonly description: string
  /** How the README shows the default when it is not a constant: "from `listen`", "(required)". */
  readonly defaultText?: string
}

function doc<T extends z.ZodType> (schema: T, description: string, defaultText?: string): T {
  return schema.meta({ description, ...(defaultText !== undefined ? { defaultText } : {}) })
}

const text = (what: string, pattern?: RegExp): z.ZodString => {
  const s = z.string({ error: what }).min(1, { error: what })
  return pattern === undefined ? s : s.regex(pattern, { error: what })
}
const integer = (min: number, max: number): z.ZodNumber => {
  const what = `an integer from ${min} to ${max}`
  return z.int({ error: what }).min(min, { error: what }).max(max, { error: what })
}
const bool = (): z.ZodBoolean => z.boolean({ error: 'true or false' })
const DURATION_RE = /^\s*\d+(?:\.\d+)?\s*(?:ms|s|m|h|d)\s*$/
const SIZE_RE = /^\s*\d+(?:\.\d+)?\s*(?:[kKmMgGtT][iI]?[bB]?|[bB])?\s*$/
const duration = (): z.ZodType<string | number> => z.union([
  z.string({ error: DURATION_GRAMMAR }).regex(DURATION_RE, { error: DURATION_GRAMMAR }),
  z.number({ error: DURATION_GRAMMAR }).nonnegative({ error: DURATION_GRAMMAR }),
], { error: DURATION_GRAMMAR }).refine(v => parseDuration(v) !== undefined, { error: DURATION_GRAMMAR })
const size = (): z.ZodType<string | number> => z.union([
  z.string({ error: SIZE_GRAMMAR }).regex(SIZE_RE, { error: SIZE_GRAMMAR }),
  z.int({ error: SIZE_GRAMMAR }).nonnegative({ error: SIZE_GRAMMAR }),
], { error: SIZE_GRAMMAR }).refine(v => parseSize(v) !== undefined, { error: SIZE_GRAMMAR })

/** A mapping with these fields only; an unknown field is named with the ones that exist. */
function fields<S extends z.ZodRawShape> (shape: S, what = 'a mapping'): z.ZodObject<S, z.core.$strict> {
  const known = Object.keys(shape).join(', ')
  return z.strictObject(shape, { error: iss => iss.code === 'unrecognized_keys' ? `one of the known fields (${known})` : what })
}

export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
const envName = (of: string): z.ZodString => text(`the NAME of an environment variable holding ${of}`, ENV_NAME)
const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/
const shortName = (): z.ZodString => text('a short lowercase name: 1 to 63 of a-z, 0-9, ".", "_", "-", starting with a letter or digit', NAME)
export const LISTEN_RE = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/
const listen = (): z.ZodType<string> => text('HOST:PORT, such as "127.0.0.1:5000" or "[::]:5000"', LISTEN_RE)
  .refine(v => { const m = LISTEN_RE.exec(v); return m === null || Number(m[3]) <= 65535 }, { error: 'HOST:PORT with a port up to 65535' })
const REGISTRY_URL = 'an http:// or https:// URL with no path and no credentials, such as "https://registry-1.docker.io"'
const registryUrl = (): z.ZodType<string> => text(REGISTRY_URL).refine(v => {
  try {
    const u = new URL(v)
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.username === '' && u.password === '' && (u.pathname === '/' || u.pathname === '')
  } catch { return false }
}, { error: REGISTRY_URL })
const httpUrl = (what: string): z.ZodType<string> => text(what).refine(v => {
  try { const u = new URL(v); return u.protocol === 'http:' || u.protocol === 'https:' } catch { return false }
}, { error: what })
const GLOB = /^[A-Za-z0-9._\-/*:]+$/
const globs = (what: string): z.ZodArray<z.ZodString> => z.array(text(`${what}: glob patterns of [A-Za-z0-9._-/:] and * (within a path segment) or ** (across)`, GLOB), { error: `a list of ${what}` })
const ROLE = z.enum(['reader', 'writer', 'admin'], { error: 'one of reader, writer, admin' })
const BUCKET = 'a bucket name: 3 to 222 characters of a-z, 0-9, ".", "_" and "-", starting and ending with a letter or digit'
const KEY_PREFIX = 'a key prefix such as "ferry/": letters, digits, ".", "_", "-" and "/"'

const credentials = (of: string) => fields({
  username: doc(text('a user name'), `user for ${of}`),
  passwordEnv: doc(envName('the password or token'), 'NAME of the environment variable holding the password or token; the secret itself is never in the file'),
})

const upstream = fields({
  name: doc(shortName(), 'short name, used in logs and metrics', '(required)'),
  url: doc(registryUrl(), '`https://host[:port]` or `http://...`, no path', '(required)'),
  prefix: doc(text('a lowercase host or path prefix such as "docker.io" or "ghcr.io"', /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/).optional(),
    'first path component(s) routed here, e.g. `docker.io`, `ghcr.io`; required unless this is the default upstream', 'none'),
  aliases: doc(z.array(text('a host name'), { error: 'a list of host names' }).default([]), 'more hosts matched against containerd\'s `?ns=`; the URL\'s host always is'),
  default: doc(bool().default(false), 'names without a matching prefix or `ns` go here (at most one)'),
  dockerHub: doc(bool().optional(), 'add `library/` to one-component names', 'from the URL'),
  tagTTL: doc(duration().default('5m'), 'how long a tag is served without asking the upstream'),
  staleIfError: doc(duration().default('24h'), 'how long past its TTL a tag is served while the upstream fails'),
  credentials: doc(credentials('the upstream (Basic, or for its token service)').optional(), '`username` and `passwordEnv` for the upstream', 'none'),
  caFile: doc(text('the path of a PEM bundle').optional(), 'PEM bundle of CAs to trust for this upstream', 'none'),
  insecure: doc(bool().default(false), 'skip TLS verification (testing only)'),
  connections: doc(integer(1, 1024).default(32), 'keep-alive connections to the upstream'),
  timeouts: doc(fields({
    connect: doc(duration().default('5s'), 'TCP + TLS connect'),
    headers: doc(duration().default('30s'), 'waiting for response headers'),
    bodyIdle: doc(duration().default('30s'), 'no bytes received for this long: the transfer is resumed'),
  }).prefault({}), 'connect, headers and body-idle timeouts', 'as below'),
})

const fsStore = fields({
  type: z.literal('fs'),
  path: doc(text('a folder path').optional(), '`fs`: where blobs are kept', '`<data>/blobs`'),
}, 'a mapping')
const s3Store = z.strictObject({
  type: z.literal('s3'),
  bucket: doc(text(BUCKET, /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/), '`s3`, `gcs`: the bucket; it and the credentials must exist', '(required)'),
  prefix: doc(text(KEY_PREFIX, /^[A-Za-z0-9._/-]*$/).optional(), '`s3`, `gcs`: key prefix, e.g. `ferry/`', '`""`'),
  region: doc(text('an AWS region such as "eu-west-1"').optional(), '`s3`: the bucket\'s region', '`AWS_REGION`'),
  endpoint: doc(httpUrl('an http:// or https:// URL').optional(), '`s3`: another S3 API (MinIO, Ceph, R2...); path-style addressing then, unless `forcePathStyle: false`', 'AWS'),
  forcePathStyle: doc(bool().optional(), '`s3`: address the bucket in the path', '`true` with `endpoint`'),
}, { error: iss => iss.code === 'unrecognized_keys' ? 'no such field for store type s3 (fields: type, bucket, prefix, region, endpoint, forcePathStyle)' : 'a mapping' })
const gcsStore = z.strictObject({
  type: z.literal('gcs'),
  bucket: text(BUCKET, /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/),
  prefix: text(KEY_PREFIX, /^[A-Za-z0-9._/-]*$/).optional(),
  apiEndpoint: doc(httpUrl('an http:// or https:// URL').optional(), '`gcs`: another endpoint', 'Google'),
  projectId: doc(text('a project id').optional(), '`gcs`: the project', 'from the credentials'),
}, { error: iss => iss.code === 'unrecognized_keys' ? 'no such field for store type gcs (fields: type, bucket, prefix, apiEndpoint, projectId)' : 'a mapping' })

const REDIS_URL = 'a redis:// or rediss:// URL'
const redisState = fields({
  type: z.literal('redis'),
  url: doc(text(REDIS_URL).refine(v => { try { const u = new URL(v); return u.protocol === 'redis:' || u.protocol === 'rediss:' } catch { return false } }, { error: REDIS_URL })
    .refine(v => { try { return new URL(v).password === '' } catch { return true } }, { error: 'a URL without a password (name the variable holding it in state.passwordEnv)' }),
  '`redis`: `redis://host:6379/0` or `rediss://`, no password in it', '(required)'),
  passwordEnv: doc(envName('the password').optional(), '`redis`: NAME of the environment variable holding the password', 'none'),
  keyPrefix: doc(text('a key prefix such as "ferry:eu-west:" (1 to 64 of A-Z a-z 0-9 : . _ -)', /^[A-Za-z0-9:._-]{1,64}$/).optional(), '`redis`: prefix of every key', '`ferry:<region>:`'),
  lease: doc(duration().refine(v => (parseDuration(v) ?? 0) >= 1000, { error: 'at least 1s' }).default('10s'), '`redis`: fill lease; a dead proxy\'s fill is taken over within it'),
})
const embeddedState = fields({ type: z.literal('embedded') })

const peerRegion = fields({
  name: doc(shortName(), 'the peer region\'s name', '(required)'),
  url: doc(registryUrl(), 'its edge', '(required)'),
  credentials: doc(credentials('pushing to it: for a ferry peer, any user name and its replication secret').optional(), '`username` and `passwordEnv`', 'none'),
  caFile: doc(text('the path of a PEM bundle').optional(), 'PEM bundle of CAs to trust for it', 'none'),
  insecure: doc(bool().default(false), 'skip TLS verification (testing only)'),
})

const replication = fields({
  secretEnv: doc(envName('the secret').optional(), 'NAME of the variable holding the secret this region accepts pushes with; none: no pushes', 'none'),
  peers: doc(z.array(peerRegion, { error: 'a list of peer regions' }).default([]), 'the regions (or registries) this one replicates to and asks on a miss'),
  rules: doc(z.array(fields({
    repositories: doc(globs('repository patterns').default(['**']), 'repository globs: `*` in a path segment, `**` across'),
    tags: doc(globs('tag patterns').default(['**']), 'tag globs'),
    peers: doc(z.array(text('a peer region\'s name')).optional(), 'peers by name', 'every peer'),
  }), { error: 'a list of rules' }).optional(), 'which repositories and tags go to which peers; the first matching rule decides', 'everything to every peer'),
  concurrency: doc(integer(1, 64).default(4), 'events and blob uploads in flight per peer'),
  metricsListen: doc(listen().optional(), 'where `ferry replicate` serves `/metrics`', 'none'),
  fallback: doc(bool().optional(), 'ask peers for a missing blob or manifest before the upstream', '`true` with peers'),
  fallbackTimeout: doc(duration().default('2s'), 'how long each peer gets to answer a fallback'),
  attempts: doc(integer(1, 100).default(5), 'tries at an event a peer refuses before it is dead-lettered'),
  edge: doc(httpUrl('an http:// URL of this region\'s edge').optional(), 'this region\'s edge, for the replicator to fetch what the region does not hold yet', 'from `listen`'),
})

const WHO = /^(anonymous|replicator|(user|group|robot):[A-Za-z0-9._@-]+)$/
const BCRYPT = /^\$2[aby]\$\d\d\$.{53}$/
const auth = fields({
  htpasswd: doc(text('the path of an htpasswd file (bcrypt entries)').optional(), 'an htpasswd file of bcrypt entries, read again when it changes', 'none'),
  users: doc(z.record(z.string(), z.string().regex(BCRYPT, { error: 'a bcrypt hash ($2b$...), never a password' }), { error: 'a mapping of user names to bcrypt hashes' }).default({}),
    'users in the region file: name -> bcrypt hash (`ferry passwd NAME` prints one)'),
  groups: doc(z.record(z.string(), z.array(text('a user name')), { error: 'a mapping of group names to lists of users' }).default({}), 'group name -> its users'),
  token: doc(fields({
    keyFile: doc(text('the path of a PKCS#8 PEM private key (EC P-256 or RSA)'), 'the signing key', '(required)'),
    service: doc(text('a service name').default('ferry'), 'the token service\'s name'),
    ttl: doc(duration().default('5m'), 'how long a token is good for'),
    realm: doc(text('the URL clients fetch tokens from').optional(), 'the realm in challenges (behind a proxy)', 'from the request'),
  }).optional(), 'the Docker token flow: `keyFile`, `service`, `ttl`, `realm`', 'none'),
  access: doc(z.array(fields({
    repositories: doc(globs('repository patterns'), 'repository globs this rule is for', '(required)'),
    allow: doc(z.record(z.string().regex(WHO, { error: '"anonymous", "replicator", "user:NAME", "group:NAME" or "robot:NAME"' }), ROLE, { error: 'a mapping of who to a role' }),
      '`anonymous`, `replicator`, `user:NAME`, `group:NAME` or `robot:NAME` -> `reader`, `writer` or `admin`', '(required)'),
  }), { error: 'a list of access rules' }).default([]), 'rules: `repositories` and `allow` (who -> reader, writer or admin); the first matching rule decides'),
})

export const regionFile = fields({
  region: doc(text('a lowercase region name: 1 to 63 of a-z, 0-9 and "-"', /^[a-z0-9][a-z0-9-]{0,62}$/).default('local'), 'name of this region (logs, metrics)'),
  listen: doc(listen().default('127.0.0.1:5000'), '`HOST:PORT` to serve on; `[::]:5000` for IPv6'),
  data: doc(text('a folder path').default('./ferry-data'), 'data folder: `blobs/` (unless `store.path`), `state/`, `tmp/`; relative to the working directory'),
  workers: doc(integer(1, 64).default(1), 'processes serving the port (`--workers N`); more than one uses more cores, with one fill per blob across all of them (fs store, embedded state only)'),
  store: doc(z.discriminatedUnion('type', [fsStore, s3Store, gcsStore], { error: 'one of fs, s3, gcs' }).default({ type: 'fs' }), 'the region\'s blob store: `type` is `fs`, `s3` or `gcs`', '`{type: fs}`'),
  state: doc(z.discriminatedUnion('type', [embeddedState, redisState], { error: 'one of embedded, redis' }).default({ type: 'embedded' }),
    '`type` is `embedded` (files under `<data>/state`, one process) or `redis` (shared by a region)', '`{type: embedded}`'),
  l1: doc(fields({
    path: doc(text('a folder path on this proxy\'s own disk'), 'where', '(required)'),
    maxBytes: doc(size().refine(v => (parseSize(v) ?? 0) > 0, { error: 'a size above zero' }), 'its size', '(required)'),
  }).optional(), 'this proxy\'s disk tier in front of the store: `path`, `maxBytes`; required with `s3` and `gcs`', 'none'),
  peer: doc(fields({
    advertise: doc(text('an http://HOST:PORT URL').refine(v => {
      try { const u = new URL(v); return u.protocol === 'http:' && (u.pathname === '/' || u.pathname === '') } catch { return false }
    }, { error: 'an http://HOST:PORT URL' }).optional(), '`http://HOST:PORT` where the region\'s other proxies reach this one; `FERRY_PEER_ADVERTISE` overrides', 'from `listen`'),
  }).optional(), 'this proxy among the other proxies of its region', 'none'),
  replication: doc(replication.prefault({}), 'what this region sends to other regions and accepts from them', 'as below'),
  auth: doc(auth.optional(), 'client authentication and access per repository (see [Securing ferry](#securing-ferry))', 'none'),
  audit: doc(fields({
    file: doc(text('a file path, or "-" for stdout'), 'the audit log (`-`: stdout)', '(required)'),
    maxBytes: doc(size().default('100MiB'), 'rotated to `.1` past this'),
  }).optional(), 'the audit log: `file`, `maxBytes`', 'none'),
  tls: doc(fields({
    certFile: doc(text('the path of a PEM certificate (chain)'), 'the certificate chain', '(required)'),
    keyFile: doc(text('the path of its PEM private key'), 'its key', '(required)'),
  }).optional(), 'serve HTTPS: `certFile`, `keyFile`; re-read when they change', 'none'),
  log: doc(fields({
    level: doc(z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { error: 'one of fatal, error, warn, info, debug, trace, silent' }).default('info'), 'the log level'),
  }).prefault({}), 'the operational log: `level`', 'as below'),
  cache: doc(fields({
    maxBytes: doc(size().refine(v => (parseSize(v) ?? 0) > 0, { error: 'a size above zero' }).default('20GiB'),
      'upper bound on blob bytes in the store; least recently used are evicted past it (in a region, by one proxy at a time; blobs used in the last 10 minutes are kept)'),
    manifestMemory: doc(size().default('64MiB'), 'manifests kept in memory (they are also on disk)'),
    smallBlobMemory: doc(size().default('64MiB'), 'blobs of 256 KiB or less (configs, small layers) kept in memory (they are also on disk)'),
    resumeAttempts: doc(integer(0, 100).default(5), 'how often a broken upstream transfer is resumed before the fill fails'),
    resumeBackoff: doc(duration().default('250ms'), 'wait before the first resume, doubled for each next one'),
  }).prefault({}), 'the cache\'s bounds and its miss path', 'as below'),
  upstreams: doc(z.array(upstream, { error: 'a list of upstream registries' }).optional(), 'the upstream registries (each below); `--upstream URL` adds one', '(required)'),
})

export type RegionFile = z.input<typeof regionFile>
export type ValidRegionFile = z.output<typeof regionFile>

/** The region file's JSON Schema (draft 2020-12), for `ferry schema` and editors. */
export function regionJsonSchema (): Record<string, unknown> {
  return {
    ...z.toJSONSchema(regionFile, { io: 'input', unrepresentable: 'any' }),
    $id: 'https://ferry.dev/schemas/region.json',
    title: 'ferry region file',
  }
}
