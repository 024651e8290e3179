// The region file, declared once (valibot): every field, the rule it must
// follow (which is also the "expected ..." of its error), its default and its
// meaning. From this one declaration come the validation (parse.ts), the JSON
// Schema that `ferry schema` prints and editors use, and the README's
// configuration table (reference.ts). parse.ts turns a valid document into a
// RegionConfig. valibot rather than zod: the same job for a tenth of the
// memory (zod's import alone added 18 MB to the process).
import * as v from 'valibot'
import { EVENT_TYPES } from '../observe/webhook-events.ts'
import { toJsonSchema } from '@valibot/to-json-schema'
import { DURATION_GRAMMAR, parseDuration, parseSize, SIZE_GRAMMAR } from '../common/units.ts'

type Schema = v.GenericSchema
type Str = v.GenericSchema<string>

/** A field's meaning, and how the README shows its default when that is computed or not a constant ("from `listen`", "(required)"). */
function doc<T extends Schema> (schema: T, description: string, defaultText?: string): T {
  return v.pipe(schema, v.description(description), ...(defaultText !== undefined ? [v.metadata({ defaultText })] : [])) as unknown as T
}

const text = (what: string, pattern?: RegExp): Str => pattern === undefined
  ? v.pipe(v.string(what), v.minLength(1, what))
  : v.pipe(v.string(what), v.minLength(1, what), v.regex(pattern, what))
const integer = (min: number, max: number): v.GenericSchema<number> => {
  const what = `an integer from ${min} to ${max}`
  return v.pipe(v.number(what), v.integer(what), v.minValue(min, what), v.maxValue(max, what))
}
const bool = (): v.GenericSchema<boolean> => v.boolean('true or false')
const DURATION_RE = /^\s*\d+(?:\.\d+)?\s*(?:ms|s|m|h|d)\s*$/
const SIZE_RE = /^\s*\d+(?:\.\d+)?\s*(?:[kKmMgGtT][iI]?[bB]?|[bB])?\s*$/
const duration = (): v.GenericSchema<string | number> => v.union([
  v.pipe(v.string(DURATION_GRAMMAR), v.regex(DURATION_RE, DURATION_GRAMMAR)),
  v.pipe(v.number(DURATION_GRAMMAR), v.minValue(0, DURATION_GRAMMAR)),
], DURATION_GRAMMAR)
const size = (): v.GenericSchema<string | number> => v.union([
  v.pipe(v.string(SIZE_GRAMMAR), v.regex(SIZE_RE, SIZE_GRAMMAR), v.check(x => parseSize(x) !== undefined, SIZE_GRAMMAR)),
  v.pipe(v.number(SIZE_GRAMMAR), v.integer(SIZE_GRAMMAR), v.minValue(0, SIZE_GRAMMAR)),
], SIZE_GRAMMAR)
const positiveSize = (): v.GenericSchema<string | number> => v.pipe(size(), v.check(x => (parseSize(x) ?? 0) > 0, 'a size above zero'))

/** A mapping with these fields only; an unknown field is named with the ones that exist. */
function fields<S extends v.ObjectEntries> (shape: S, unknown = `one of the known fields (${Object.keys(shape).join(', ')})`) {
  return v.strictObject(shape, unknown)
}

export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
const envName = (of: string): Str => text(`the NAME of an environment variable holding ${of}`, ENV_NAME)
const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/
const shortName = (): Str => text('a short lowercase name: 1 to 63 of a-z, 0-9, ".", "_", "-", starting with a letter or digit', NAME)
export const LISTEN_RE = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/
const listen = (): Str => v.pipe(text('HOST:PORT, such as "127.0.0.1:5000" or "[::]:5000"', LISTEN_RE),
  v.check(x => { const m = LISTEN_RE.exec(x); return m === null || Number(m[3]) <= 65535 }, 'HOST:PORT with a port up to 65535'))
const REGISTRY_URL = 'an http:// or https:// URL with no path and no credentials, such as "https://registry-1.docker.io"'
const registryUrl = (): Str => v.pipe(text(REGISTRY_URL), v.check(x => {
  try {
    const u = new URL(x)
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.username === '' && u.password === '' && (u.pathname === '/' || u.pathname === '')
  } catch { return false }
}, REGISTRY_URL))
const httpUrl = (what: string): Str => v.pipe(text(what), v.check(x => {
  try { const u = new URL(x); return u.protocol === 'http:' || u.protocol === 'https:' } catch { return false }
}, what))
const GLOB = /^[A-Za-z0-9._\-/*:]+$/
const globs = (what: string): v.GenericSchema<string[]> => v.array(text(`${what}: glob patterns of [A-Za-z0-9._-/:] and * (within a path segment) or ** (across)`, GLOB), `a list of ${what}`)
const ROLE = v.picklist(['reader', 'writer', 'admin'], 'one of reader, writer, admin')
const BUCKET = 'a bucket name: 3 to 222 characters of a-z, 0-9, ".", "_" and "-", starting and ending with a letter or digit'
const BUCKET_RE = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/
const KEY_PREFIX = 'a key prefix such as "ferry/": letters, digits, ".", "_", "-" and "/"'
const KEY_PREFIX_RE = /^[A-Za-z0-9._/-]*$/
const keyPrefix = (): v.GenericSchema<string> => v.pipe(v.string(KEY_PREFIX), v.regex(KEY_PREFIX_RE, KEY_PREFIX))

const credentials = (of: string) => fields({
  username: doc(text('a user name'), `user for ${of}`),
  passwordEnv: doc(envName('the password or token'), 'NAME of the environment variable holding the password or token; the secret itself is never in the file'),
})

const upstream = fields({
  name: doc(shortName(), 'short name, used in logs and metrics', '(required)'),
  url: doc(registryUrl(), '`https://host[:port]` or `http://...`, no path', '(required)'),
  prefix: doc(v.optional(text('a lowercase host or path prefix such as "docker.io" or "ghcr.io"', /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/)),
    'first path component(s) routed here, e.g. `docker.io`, `ghcr.io`; required unless this is the default upstream', 'none'),
  aliases: doc(v.optional(v.array(text('a host name'), 'a list of host names'), []), 'more hosts matched against containerd\'s `?ns=`; the URL\'s host always is'),
  default: doc(v.optional(bool(), false), 'names without a matching prefix or `ns` go here (at most one)'),
  dockerHub: doc(v.optional(bool()), 'add `library/` to one-component names', 'from the URL'),
  tagTTL: doc(v.optional(duration(), '5m'), 'how long a tag is served without asking the upstream'),
  staleIfError: doc(v.optional(duration(), '24h'), 'how long past its TTL a tag is served while the upstream fails'),
  notFoundTTL: doc(v.optional(duration(), '30s'), 'how long the upstream\'s "not found" for a blob, manifest or tag is believed without asking again'),
  credentials: doc(v.optional(credentials('the upstream (Basic, or for its token service)')), '`username` and `passwordEnv` for the upstream', 'none'),
  caFile: doc(v.optional(text('the path of a PEM bundle')), 'PEM bundle of CAs to trust for this upstream', 'none'),
  insecure: doc(v.optional(bool(), false), 'skip TLS verification (testing only)'),
  connections: doc(v.optional(integer(1, 1024), 32), 'keep-alive connections to the upstream'),
  timeouts: doc(v.optional(fields({
    connect: doc(v.optional(duration(), '5s'), 'TCP + TLS connect'),
    headers: doc(v.optional(duration(), '30s'), 'waiting for response headers'),
    bodyIdle: doc(v.optional(duration(), '30s'), 'no bytes received for this long: the transfer is resumed'),
  }), {}), 'connect, headers and body-idle timeouts', 'as below'),
})

const storeFields = (type: string, names: string[]): string => `no such field for store type ${type} (fields: ${names.join(', ')})`
const fsStore = v.strictObject({
  type: v.literal('fs'),
  path: doc(v.optional(text('a folder path')), '`fs`: where blobs are kept', '`<data>/blobs`'),
}, storeFields('fs', ['type', 'path']))
const s3Store = v.strictObject({
  type: v.literal('s3'),
  bucket: doc(text(BUCKET, BUCKET_RE), '`s3`, `gcs`: the bucket; it and the credentials must exist', '(required)'),
  prefix: doc(v.optional(keyPrefix()), '`s3`, `gcs`: key prefix, e.g. `ferry/`', '`""`'),
  region: doc(v.optional(text('an AWS region such as "eu-west-1"')), '`s3`: the bucket\'s region', '`AWS_REGION`'),
  endpoint: doc(v.optional(httpUrl('an http:// or https:// URL')), '`s3`: another S3 API (MinIO, Ceph, R2...); path-style addressing then, unless `forcePathStyle: false`', 'AWS'),
  forcePathStyle: doc(v.optional(bool()), '`s3`: address the bucket in the path', '`true` with `endpoint`'),
}, storeFields('s3', ['type', 'bucket', 'prefix', 'region', 'endpoint', 'forcePathStyle']))
const gcsStore = v.strictObject({
  type: v.literal('gcs'),
  bucket: text(BUCKET, BUCKET_RE),
  prefix: v.optional(keyPrefix()),
  apiEndpoint: doc(v.optional(httpUrl('an http:// or https:// URL')), '`gcs`: another endpoint', 'Google'),
  projectId: doc(v.optional(text('a project id')), '`gcs`: the project', 'from the credentials'),
}, storeFields('gcs', ['type', 'bucket', 'prefix', 'apiEndpoint', 'projectId']))

const REDIS_URL = 'a redis:// or rediss:// URL'
const redisState = fields({
  type: v.literal('redis'),
  url: doc(v.pipe(text(REDIS_URL),
    v.check(x => { try { const u = new URL(x); return u.protocol === 'redis:' || u.protocol === 'rediss:' } catch { return false } }, REDIS_URL),
    v.check(x => { try { return new URL(x).password === '' } catch { return true } }, 'a URL without a password (name the variable holding it in state.passwordEnv)')),
  '`redis`: `redis://host:6379/0` or `rediss://`, no password in it', '(required)'),
  passwordEnv: doc(v.optional(envName('the password')), '`redis`: NAME of the environment variable holding the password', 'none'),
  keyPrefix: doc(v.optional(text('a key prefix such as "ferry:eu-west:" (1 to 64 of A-Z a-z 0-9 : . _ -)', /^[A-Za-z0-9:._-]{1,64}$/)), '`redis`: prefix of every key', '`ferry:<region>:`'),
  lease: doc(v.optional(v.pipe(duration(), v.check(x => (parseDuration(x) ?? 0) >= 1000, 'at least 1s')), '10s'), '`redis`: fill lease; a dead proxy\'s fill is taken over within it'),
})
const embeddedState = fields({ type: v.literal('embedded') })

const peerRegion = fields({
  name: doc(shortName(), 'the peer region\'s name', '(required)'),
  url: doc(registryUrl(), 'its edge', '(required)'),
  credentials: doc(v.optional(credentials('pushing to it: for a ferry peer, any user name and its replication secret')), '`username` and `passwordEnv`', 'none'),
  caFile: doc(v.optional(text('the path of a PEM bundle')), 'PEM bundle of CAs to trust for it', 'none'),
  insecure: doc(v.optional(bool(), false), 'skip TLS verification (testing only)'),
})

const replication = fields({
  secretEnv: doc(v.optional(envName('the secret')), 'NAME of the variable holding the secret other regions\' replicators push with; none: this region takes no replicas', 'none'),
  peers: doc(v.optional(v.array(peerRegion, 'a list of peer regions'), []), 'the regions (or registries) this one replicates to and asks on a miss'),
  rules: doc(v.optional(v.array(fields({
    repositories: doc(v.optional(globs('repository patterns'), ['**']), 'repository globs: `*` in a path segment, `**` across'),
    tags: doc(v.optional(globs('tag patterns'), ['**']), 'tag globs'),
    peers: doc(v.optional(v.array(text('a peer region\'s name'), 'a list of peer names')), 'peers by name', 'every peer'),
    deletes: doc(v.optional(bool(), false), 'deletes of tags and manifests (pushed here) go to these peers too'),
  }), 'a list of rules')), 'which repositories and tags go to which peers; the first matching rule decides', 'everything to every peer'),
  concurrency: doc(v.optional(integer(1, 64), 4), 'events and blob uploads in flight per peer'),
  metricsListen: doc(v.optional(listen()), 'where `ferry replicate` serves `/metrics`', 'none'),
  fallback: doc(v.optional(bool()), 'ask peers for a missing blob or manifest before the upstream', '`true` with peers'),
  fallbackTimeout: doc(v.optional(duration(), '2s'), 'how long each peer gets to answer a fallback'),
  attempts: doc(v.optional(integer(1, 100), 5), 'tries at an event a peer refuses, or whose content this region cannot produce, before it is dead-lettered'),
  edge: doc(v.optional(httpUrl('an http:// URL of this region\'s edge')), 'this region\'s edge, for the replicator to fetch what the region does not hold yet', 'from `listen`'),
})

const WHO = /^(anonymous|replicator|(user|group|robot):[A-Za-z0-9._@-]+)$/
const BCRYPT = /^\$2[aby]\$\d\d\$.{53}$/
const auth = fields({
  htpasswd: doc(v.optional(text('the path of an htpasswd file (bcrypt entries)')), 'an htpasswd file of bcrypt entries, read again when it changes', 'none'),
  users: doc(v.optional(v.record(v.string(), v.pipe(v.string('a bcrypt hash ($2b$...), never a password'), v.regex(BCRYPT, 'a bcrypt hash ($2b$...), never a password')), 'a mapping of user names to bcrypt hashes'), {}),
    'users in the region file: name -> bcrypt hash (`ferry passwd NAME --hash-only` prints one)'),
  groups: doc(v.optional(v.record(v.string(), v.array(text('a user name'), 'a list of user names'), 'a mapping of group names to lists of users'), {}), 'group name -> its users'),
  ldap: doc(v.optional(fields({
    url: doc(text('an ldap:// or ldaps:// URL', /^ldaps?:\/\/[^/\s]+\/?$/), 'the directory', '(required)'),
    startTLS: doc(v.optional(v.boolean('true or false'), false), 'upgrade an ldap:// connection with StartTLS'),
    caFile: doc(v.optional(text('the path of a PEM CA file')), 'the CA the directory\'s certificate is verified with (ldaps:// or StartTLS)', 'the system CAs'),
    bindDN: doc(text('a DN'), 'the service account that searches for users', '(required)'),
    bindPasswordEnv: doc(envName('the service account\'s password'), 'NAME of the variable holding its password', '(required)'),
    userBase: doc(text('a DN'), 'where users are searched (the whole subtree)', '(required)'),
    userFilter: doc(v.optional(text('an LDAP filter with {user}'), '(uid={user})'), 'how a user is found; `{user}` is the escaped name (`(sAMAccountName={user})` for Active Directory)'),
    groupAttribute: doc(v.optional(text('an attribute name')), 'groups from this attribute of the user\'s entry (DNs, such as `memberOf`); a group is named by its first RDN\'s value', 'none'),
    groupSearch: doc(v.optional(fields({
      base: doc(text('a DN'), 'where groups are searched', '(required)'),
      filter: doc(v.optional(text('an LDAP filter with {dn} or {user}'), '(member={dn})'), 'which groups hold the user'),
      nameAttribute: doc(v.optional(text('an attribute name'), 'cn'), 'the attribute that names a group'),
    })), 'groups from a search: `base`, `filter`, `nameAttribute`', 'none'),
    cacheTTL: doc(v.optional(duration(), '60s'), 'how long a login and a user\'s existence are remembered'),
    timeout: doc(v.optional(duration(), '5s'), 'how long the directory may take to connect or answer'),
  })), 'users from an LDAP directory or Active Directory; access rules name their groups as `group:NAME`', 'none'),
  oidc: doc(v.optional(fields({
    issuer: doc(httpUrl('the issuer URL of an OpenID provider'), 'the provider; its keys come from `<issuer>/.well-known/openid-configuration`', '(required)'),
    audience: doc(text('a client id'), 'the audience a token must be for (the client id ferry is registered as)', '(required)'),
    usernameClaim: doc(v.optional(text('a claim name'), 'preferred_username'), 'the claim that names the user (the name given to `docker login` must be it)'),
    groupsClaim: doc(v.optional(text('a claim name'), 'groups'), 'the claim that lists the user\'s groups'),
    clientSecretEnv: doc(v.optional(envName('the client secret')), 'for the console\'s sign-in through the provider: NAME of the variable holding ferry\'s client secret', 'none: no sign-in button'),
    redirectUri: doc(v.optional(httpUrl('this ferry\'s callback URL')), 'for the console\'s sign-in: `https://<ferry as browsers reach it>/_ferry/api/v1/session/oidc/callback`, registered at the provider', 'none'),
  })), 'users of an OpenID provider: `docker login -u NAME -p <a token the provider issued>`', 'none'),
  token: doc(v.optional(fields({
    keyFile: doc(text('the path of a PKCS#8 PEM private key (EC P-256 or RSA)'), 'the signing key', '(required)'),
    service: doc(v.optional(text('a service name'), 'ferry'), 'the token service\'s name'),
    ttl: doc(v.optional(duration(), '5m'), 'how long a token is good for'),
    realm: doc(v.optional(text('the URL clients fetch tokens from')), 'the realm in challenges (behind a proxy)', 'from the request'),
  })), 'the Docker token flow: `keyFile`, `service`, `ttl`, `realm`', 'none'),
  access: doc(v.optional(v.array(fields({
    repositories: doc(globs('repository patterns'), 'repository globs this rule is for', '(required)'),
    allow: doc(v.record(v.pipe(v.string(), v.regex(WHO, '"anonymous", "replicator", "user:NAME", "group:NAME" or "robot:NAME"')), ROLE, 'a mapping of who to a role'),
      '`anonymous`, `replicator`, `user:NAME`, `group:NAME` or `robot:NAME` -> `reader`, `writer` or `admin`', '(required)'),
  }), 'a list of access rules'), []), 'rules: `repositories` and `allow` (who -> reader, writer or admin); the first matching rule decides'),
})

export const regionFile = fields({
  region: doc(v.optional(text('a lowercase region name: 1 to 63 of a-z, 0-9 and "-"', /^[a-z0-9][a-z0-9-]{0,62}$/), 'local'), 'name of this region (logs, metrics)'),
  listen: doc(v.optional(listen(), '127.0.0.1:5000'), '`HOST:PORT` to serve on; `[::]:5000` for IPv6'),
  hostnames: doc(v.optional(v.array(text('a host name, with :port when not the default', /^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]{1,5})?$/), 'a list of host names'), []),
    'names clients pull from ferry itself by, as containerd gives them in `?ns=` (the `Host` a request came with always counts); any other `?ns=` that names no upstream is refused'),
  data: doc(v.optional(text('a folder path'), './ferry-data'), 'data folder: `blobs/` (unless `store.path`), `state/`, `tmp/`; relative to the working directory'),
  workers: doc(v.optional(integer(1, 64), 1), 'processes serving the port (`--workers N`); more than one uses more cores, with one fill per blob across all of them (fs store, embedded state only)'),
  store: doc(v.optional(v.variant('type', [fsStore, s3Store, gcsStore], 'one of fs, s3, gcs'), { type: 'fs' }), 'the region\'s blob store: `type` is `fs`, `s3` or `gcs`', '`{type: fs}`'),
  state: doc(v.optional(v.variant('type', [embeddedState, redisState], 'one of embedded, redis'), { type: 'embedded' }),
    '`type` is `embedded` (files under `<data>/state`, one process) or `redis` (shared by a region)', '`{type: embedded}`'),
  l1: doc(v.optional(fields({
    path: doc(text('a folder path on this proxy\'s own disk'), 'where', '(required)'),
    maxBytes: doc(positiveSize(), 'its size', '(required)'),
  })), 'this proxy\'s disk tier in front of the store: `path`, `maxBytes`; required with `s3` and `gcs`', 'none'),
  peer: doc(v.optional(fields({
    advertise: doc(v.optional(v.pipe(text('an http://HOST:PORT URL'), v.check(x => {
      try { const u = new URL(x); return u.protocol === 'http:' && (u.pathname === '/' || u.pathname === '') } catch { return false }
    }, 'an http://HOST:PORT URL'))), '`http://HOST:PORT` where the region\'s other proxies reach this one; `FERRY_PEER_ADVERTISE` overrides', 'from `listen`'),
  })), 'this proxy among the other proxies of its region', 'none'),
  replication: doc(v.optional(replication, {}), 'what this region sends to other regions and accepts from them', 'as below'),
  auth: doc(v.optional(auth), 'client authentication and access per repository (see [Securing ferry](#securing-ferry))', 'none'),
  audit: doc(v.optional(fields({
    file: doc(text('a file path, or "-" for stdout'), 'the audit log (`-`: stdout)', '(required)'),
    maxBytes: doc(v.optional(size(), '100MiB'), 'rotated to `.1` past this'),
  })), 'the audit log: `file`, `maxBytes`', 'none'),
  webhooks: doc(v.optional(v.array(fields({
    name: doc(text('a name for this hook', /^[a-z0-9][a-z0-9._-]{0,62}$/), 'names the hook in logs and dead letters', '(required)'),
    url: doc(httpUrl('an http:// or https:// URL'), 'where events are POSTed (CloudEvents, structured JSON)', '(required)'),
    events: doc(v.pipe(v.array(v.picklist([...EVENT_TYPES], `one of ${EVENT_TYPES.join(', ')}`), 'a list of event types'), v.minLength(1, 'at least one event type')), `which events: ${EVENT_TYPES.map(e => `\`${e}\``).join(', ')}`, '(required)'),
    secretEnv: doc(v.optional(envName('the HMAC secret')), 'NAME of the variable holding the secret each body is signed with (`X-Ferry-Signature: sha256=<hex>`)', 'none: unsigned'),
    attempts: doc(v.optional(integer(1, 100), 8), 'deliveries tried (with backoff from 0.5 s, doubling, at most a minute apart) before an event goes to the dead letters'),
    timeout: doc(v.optional(duration(), '10s'), 'how long one delivery may take'),
    maxQueued: doc(v.optional(integer(1, 1_000_000), 10_000), 'events held in memory while the receiver is slow or down; past it, new events go straight to the dead letters'),
  }), 'a list of webhooks'), []), 'events posted to your URLs (see [Webhooks](#webhooks))'),
  limits: doc(v.optional(fields({
    upstreamFetchesPerSecond: doc(v.optional(integer(0, 1_000_000), 100), 'upstream fetches one client (its user, else its address) may cause a second, on average; 0: no limit'),
    upstreamFetchBurst: doc(v.optional(integer(1, 10_000_000), 2000), 'and at once, before that rate applies'),
    idleTimeout: doc(v.optional(duration(), '60s'), 'a connection on which no byte moves for this long (a client that sends nothing, or reads nothing) is closed'),
    headersTimeout: doc(v.optional(duration(), '30s'), 'a request whose headers take longer is refused'),
    connections: doc(v.optional(integer(1, 1_000_000), 20_000), 'open client connections at most; more are closed at once'),
    connectionsPerClient: doc(v.optional(integer(1, 1_000_000), 1000), 'open connections from one address at most; more are closed at once'),
  }), {}), 'what one client may cost: upstream fetches (past them, 429 with Retry-After), connections, time', 'as below'),
  metrics: doc(v.optional(fields({
    listen: doc(v.optional(listen()), 'serve `/metrics` on this address only (not on the proxy\'s port)', 'the proxy\'s port'),
    tokenEnv: doc(v.optional(envName('the metrics token')), 'NAME of the variable holding a token `/metrics` requires (`Authorization: Bearer <token>`)', 'none: open'),
  }), {}), 'where `/metrics` is served and who may read it', 'as below'),
  console: doc(v.optional(fields({
    enabled: doc(v.optional(v.boolean('true or false'), true), 'serve the web console at `/ui/` and its JSON API at `/_ferry/api/v1/`'),
  }), {}), 'the web console (see [Console](#console))', 'as below'),
  tls: doc(v.optional(fields({
    certFile: doc(text('the path of a PEM certificate (chain)'), 'the certificate chain', '(required)'),
    keyFile: doc(text('the path of its PEM private key'), 'its key', '(required)'),
  })), 'serve HTTPS: `certFile`, `keyFile`; re-read when they change', 'none'),
  log: doc(v.optional(fields({
    level: doc(v.optional(v.picklist(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'one of fatal, error, warn, info, debug, trace, silent'), 'info'), 'the log level'),
  }), {}), 'the operational log: `level`', 'as below'),
  cache: doc(v.optional(fields({
    maxBytes: doc(v.optional(positiveSize(), '20GiB'),
      'upper bound on blob bytes in the store; least recently used are evicted past it (in a region, by one proxy at a time; blobs used in the last 10 minutes are kept)'),
    manifestMemory: doc(v.optional(size(), '64MiB'), 'manifests kept in memory (they are also on disk)'),
    smallBlobMemory: doc(v.optional(size(), '64MiB'), 'blobs of 256 KiB or less (configs, small layers) kept in memory (they are also on disk)'),
    resumeAttempts: doc(v.optional(integer(0, 100), 5), 'how often a broken upstream transfer is resumed before the fill fails'),
    resumeBackoff: doc(v.optional(duration(), '250ms'), 'wait before the first resume, doubled for each next one'),
  }), {}), 'the cache\'s bounds and its miss path', 'as below'),
  upstreams: doc(v.optional(v.array(upstream, 'a list of upstream registries')), 'the upstream registries (each below); `--upstream URL` adds one; none on an air-gapped site that serves hosted (imported) namespaces only', '(required, unless `hosted` is set)'),
  hosted: doc(v.optional(v.array(fields({
    prefix: doc(text('a repository name prefix ending in "/", such as "acme/"', /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*\/$/),
      'repositories under it are this region\'s own: clients push them, they are never asked of an upstream, their tags never expire', '(required)'),
    quota: doc(v.optional(positiveSize()), 'the most their blobs may take (each counted once in the namespace); a push past it is refused', 'none'),
  }), 'a list of hosted namespaces'), []), 'namespaces whose repositories clients push to (see [Pushing your own images](#pushing-your-own-images))'),
  gc: doc(v.optional(fields({
    interval: doc(v.optional(duration(), '1h'), 'how often a proxy collects garbage (one proxy of a region at a time)'),
    grace: doc(v.optional(duration(), '1h'), 'how old an unreferenced blob or manifest must be before it goes'),
    uploads: doc(v.optional(duration(), '24h'), 'how long an upload session nobody writes to is kept (each proxy sweeps its own every interval)'),
  }), {}), 'garbage collection of hosted repositories and abandoned uploads', 'as below'),
})

export type RegionFile = v.InferInput<typeof regionFile>
export type ValidRegionFile = v.InferOutput<typeof regionFile>

/** The region file's JSON Schema, for `ferry schema` and editors. */
export function regionJsonSchema (): Record<string, unknown> {
  return {
    ...toJsonSchema(regionFile, { errorMode: 'ignore' }),
    $id: 'https://ferry.dev/schemas/region.json',
    title: 'ferry region file',
  }
}
