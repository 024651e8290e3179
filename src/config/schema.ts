// The region file: one schema, its defaults, and the checks. A region file is
// YAML (regions/*.yaml); see README "Configuration" for every field.
import { hostname } from 'node:os'
import { isAbsolute, resolve } from 'node:path'
import { Fields } from './fields.ts'

export interface Credentials {
  readonly username: string
  /** Name of the environment variable holding the password or token; never the secret itself. */
  readonly passwordEnv: string
}

export interface UpstreamConfig {
  readonly name: string
  readonly url: URL
  /** First path component(s) that route to this upstream: /v2/<prefix>/<repo>/... */
  readonly prefix: string | undefined
  /** Hosts matched against containerd's ?ns= (the URL's host is always included). */
  readonly aliases: readonly string[]
  readonly dockerHub: boolean
  readonly tagTTLMs: number
  readonly staleIfErrorMs: number
  readonly credentials: Credentials | undefined
  readonly caFile: string | undefined
  readonly insecure: boolean
  readonly connections: number
  readonly timeouts: { readonly connectMs: number, readonly headersMs: number, readonly bodyIdleMs: number }
}

export type StoreConfig =
  | { readonly type: 'fs', readonly path: string }
  | { readonly type: 's3', readonly bucket: string, readonly region: string | undefined, readonly endpoint: string | undefined, readonly prefix: string, readonly forcePathStyle: boolean }
  | { readonly type: 'gcs', readonly bucket: string, readonly prefix: string, readonly apiEndpoint: string | undefined, readonly projectId: string | undefined }

export type StateConfig =
  | { readonly type: 'embedded' }
  | { readonly type: 'redis', readonly url: string, readonly passwordEnv: string | undefined, readonly keyPrefix: string, readonly leaseMs: number }

/** Another region (a ferry, or any OCI registry) that replication pushes to and a miss may ask. */
export interface PeerConfig {
  readonly name: string
  readonly url: URL
  /** Basic credentials for pushing: for a ferry peer, any username and its replication secret. */
  readonly credentials: Credentials | undefined
  readonly caFile: string | undefined
  readonly insecure: boolean
}

export interface ReplicationRule {
  /** Glob patterns of repository names (`*` within a path segment, `**` across). */
  readonly repositories: readonly string[]
  readonly tags: readonly string[]
  readonly peers: readonly string[]
}

export interface ReplicationConfig {
  /** NAME of the environment variable holding the secret this region accepts pushes with; none: no pushes. */
  readonly secretEnv: string | undefined
  readonly peers: readonly PeerConfig[]
  readonly rules: readonly ReplicationRule[]
  /** Blob transfers in flight per peer. */
  readonly concurrency: number
  /** Where `ferry replicate` serves /metrics. */
  readonly metricsListen: { readonly host: string, readonly port: number } | undefined
  /** Edges ask the peers for a missing blob or manifest before the upstream. */
  readonly fallback: boolean
  readonly fallbackTimeoutMs: number
  /** Attempts at an event a peer refuses (4xx) before it goes to the dead letters. */
  readonly attempts: number
  /** This region's edge, which the replicator asks for content the region should hold but does not yet. */
  readonly edge: string | undefined
}

/** Client authentication and access; absent: every client may pull (the embedded default). */
export interface AuthConfig {
  /** An htpasswd file of bcrypt entries. */
  readonly htpasswd: string | undefined
  /** Users in the region file itself: name -> bcrypt hash. */
  readonly users: Readonly<Record<string, string>>
  readonly groups: Readonly<Record<string, readonly string[]>>
  /** The Docker token flow; absent: Basic credentials on every request. */
  readonly token: { readonly keyFile: string, readonly service: string, readonly ttlSeconds: number, readonly realm: string | undefined } | undefined
  readonly access: readonly { readonly repositories: readonly string[], readonly allow: Readonly<Record<string, 'reader' | 'writer' | 'admin'>> }[]
}

export interface RegionConfig {
  readonly file: string
  readonly region: string
  readonly listen: { readonly host: string, readonly port: number }
  readonly data: string
  readonly store: StoreConfig
  /** Where tags, the manifest index, cache bookkeeping and fill leases live. */
  readonly state: StateConfig
  /** This proxy's own disk tier in front of a shared store; absent: none. */
  readonly l1: { readonly path: string, readonly maxBytes: number } | undefined
  /** How the other proxies of the region reach this one (fills in flight are served to them). */
  readonly peer: { readonly advertise: string }
  readonly replication: ReplicationConfig
  readonly auth: AuthConfig | undefined
  /** Serve HTTPS from these files (re-read when they change); absent: plain HTTP. */
  readonly tls: { readonly certFile: string, readonly keyFile: string } | undefined
  /** Where access decisions are recorded; absent: nowhere. `file` undefined: stdout. */
  readonly audit: { readonly file: string | undefined, readonly maxBytes: number } | undefined
  /** Processes serving the port; 1 serves from the primary itself. */
  readonly workers: number
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  readonly manifestCacheBytes: number
  readonly cache: {
    /** Upper bound on the bytes of blobs kept; least recently used are evicted past it. */
    readonly maxBytes: number
    readonly resumeAttempts: number
    readonly resumeBackoffMs: number
    /** Memory for blobs of 256 KiB or less (configs, small layers), besides the disk. */
    readonly smallBlobMemory: number
  }
  readonly upstreams: readonly UpstreamConfig[]
  readonly defaultUpstream: UpstreamConfig | undefined
}

export const DEFAULTS = {
  listen: '127.0.0.1:5000',
  data: './ferry-data',
  logLevel: 'info',
  manifestCacheBytes: 64 * 1024 * 1024,
  maxBytes: '20GiB',
  resumeAttempts: 5,
  resumeBackoff: '250ms',
  smallBlobMemory: '64MiB',
  tagTTL: '5m',
  staleIfError: '24h',
  connections: 32,
  connect: '5s',
  headers: '30s',
  bodyIdle: '30s',
} as const

const DOCKER_HUB_HOSTS = new Set(['registry-1.docker.io', 'index.docker.io', 'docker.io', 'registry.hub.docker.com'])
const UPSTREAM_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/
const PREFIX = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export function parseListen (f: Fields, v: unknown, field: string): { host: string, port: number } | undefined {
  const s = f.string(v, field, { what: 'HOST:PORT, such as "127.0.0.1:5000" or "[::]:5000"' })
  if (s === undefined) return undefined
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(s)
  const port = m ? Number(m[3]) : NaN
  if (!m || port > 65535) return f.problem(field, 'HOST:PORT, such as "127.0.0.1:5000" or "[::]:5000"', v)
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port }
}

/** A registry's base URL: http(s), no path, no credentials (those come from the environment). */
function parseRegistryUrl (f: Fields, v: unknown, field: string): URL | undefined {
  const text = f.string(v, field, { what: 'an http:// or https:// URL' })
  if (text === undefined) return undefined
  let url: URL | undefined
  try { url = new URL(text) } catch { /* reported below */ }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || (url.pathname !== '/' && url.pathname !== '')) {
    return f.problem(field, 'an http:// or https:// URL with no path and no credentials', text)
  }
  return url
}

function parseUpstream (f: Fields, v: unknown, field: string): (UpstreamConfig & { isDefault: boolean }) | undefined {
  const r = f.record(v, field, ['name', 'url', 'prefix', 'aliases', 'default', 'dockerHub', 'tagTTL', 'staleIfError', 'credentials', 'caFile', 'insecure', 'connections', 'timeouts'])
  if (r === undefined) return undefined
  const name = f.string(r.name, `${field}.name`, { pattern: UPSTREAM_NAME, what: 'a short lowercase name ([a-z0-9._-])' })
  const url = parseRegistryUrl(f, r.url, `${field}.url`)
  const prefix = r.prefix === undefined ? undefined : f.string(r.prefix, `${field}.prefix`, { pattern: PREFIX, what: 'a lowercase host or path prefix such as "docker.io" or "ghcr.io"' })
  const aliases = r.aliases === undefined ? [] : (f.strings(r.aliases, `${field}.aliases`) ?? [])
  let credentials: Credentials | undefined
  if (r.credentials !== undefined) {
    const c = f.record(r.credentials, `${field}.credentials`, ['username', 'passwordEnv'])
    if (c !== undefined) {
      const username = f.string(c.username, `${field}.credentials.username`)
      const passwordEnv = f.string(c.passwordEnv, `${field}.credentials.passwordEnv`, { pattern: /^[A-Za-z_][A-Za-z0-9_]*$/, what: 'the NAME of an environment variable holding the secret' })
      if (username !== undefined && passwordEnv !== undefined) credentials = { username, passwordEnv }
    }
  }
  const t = r.timeouts === undefined ? {} : (f.record(r.timeouts, `${field}.timeouts`, ['connect', 'headers', 'bodyIdle']) ?? {})
  const timeouts = {
    connectMs: f.duration(t.connect ?? DEFAULTS.connect, `${field}.timeouts.connect`) ?? 0,
    headersMs: f.duration(t.headers ?? DEFAULTS.headers, `${field}.timeouts.headers`) ?? 0,
    bodyIdleMs: f.duration(t.bodyIdle ?? DEFAULTS.bodyIdle, `${field}.timeouts.bodyIdle`) ?? 0,
  }
  const tagTTLMs = f.duration(r.tagTTL ?? DEFAULTS.tagTTL, `${field}.tagTTL`)
  const staleIfErrorMs = f.duration(r.staleIfError ?? DEFAULTS.staleIfError, `${field}.staleIfError`)
  const caFile = r.caFile === undefined ? undefined : f.string(r.caFile, `${field}.caFile`)
  const insecure = r.insecure === undefined ? false : f.boolean(r.insecure, `${field}.insecure`)
  const connections = f.integer(r.connections ?? DEFAULTS.connections, `${field}.connections`, 1, 1024)
  const isDefault = r.default === undefined ? false : f.boolean(r.default, `${field}.default`)
  const dockerHub = r.dockerHub === undefined ? (url !== undefined && DOCKER_HUB_HOSTS.has(url.hostname)) : f.boolean(r.dockerHub, `${field}.dockerHub`)
  if (name === undefined || url === undefined || tagTTLMs === undefined || staleIfErrorMs === undefined || insecure === undefined ||
      connections === undefined || isDefault === undefined || dockerHub === undefined) return undefined
  return {
    name, url, prefix, aliases: [...new Set([url.host, ...aliases].map(a => a.toLowerCase()))], dockerHub, tagTTLMs, staleIfErrorMs,
    credentials, caFile, insecure, connections, timeouts, isDefault,
  }
}

/** Overrides from the command line (`--listen`, `--data`, `--upstream`). */
export interface Overrides { listen?: string, data?: string, upstream?: string, workers?: number }

export function parseRegion (doc: unknown, file: string, overrides: Overrides = {}): { config?: RegionConfig, problems: Fields['problems'] } {
  const f = new Fields()
  const r = f.record(doc ?? {}, '', ['region', 'listen', 'data', 'workers', 'store', 'state', 'l1', 'peer', 'replication', 'auth', 'audit', 'tls', 'log', 'cache', 'upstreams']) ?? {}
  const region = f.string(r.region ?? 'local', 'region', { pattern: /^[a-z0-9][a-z0-9-]{0,62}$/, what: 'a lowercase region name ([a-z0-9-])' })
  const listen = parseListen(f, overrides.listen ?? r.listen ?? DEFAULTS.listen, overrides.listen ? '--listen' : 'listen')
  const dataText = f.string(overrides.data ?? r.data ?? DEFAULTS.data, overrides.data ? '--data' : 'data', { what: 'a folder path' })
  const data = dataText === undefined ? undefined : (isAbsolute(dataText) ? dataText : resolve(dataText))

  const store = data === undefined ? undefined : parseStore(f, r.store, data)
  const state = parseState(f, r.state, region ?? 'local')
  let l1: RegionConfig['l1']
  if (r.l1 !== undefined) {
    const l = f.record(r.l1, 'l1', ['path', 'maxBytes'])
    const path = l === undefined ? undefined : f.string(l.path, 'l1.path', { what: 'a folder path on this proxy\'s own disk' })
    const maxBytes = l === undefined ? undefined : f.size(l.maxBytes, 'l1.maxBytes')
    if (maxBytes === 0) f.problem('l1.maxBytes', 'a size above zero', l?.maxBytes)
    if (path !== undefined && maxBytes !== undefined) l1 = { path: resolve(path), maxBytes }
  }
  let advertise: string | undefined
  const peerDoc = r.peer === undefined ? {} : (f.record(r.peer, 'peer', ['advertise']) ?? {})
  const advertiseText = process.env.FERRY_PEER_ADVERTISE ?? peerDoc.advertise
  if (advertiseText !== undefined) {
    const a = f.string(advertiseText, process.env.FERRY_PEER_ADVERTISE !== undefined ? 'FERRY_PEER_ADVERTISE' : 'peer.advertise', { what: 'an http:// URL other proxies reach this one at' })
    if (a !== undefined) {
      let u: URL | undefined
      try { u = new URL(a) } catch { /* reported below */ }
      if (u === undefined || u.protocol !== 'http:' || (u.pathname !== '/' && u.pathname !== '')) f.problem('peer.advertise', 'an http://HOST:PORT URL', a)
      else advertise = u.origin
    }
  }
  let logLevel: RegionConfig['logLevel'] = DEFAULTS.logLevel
  if (r.log !== undefined) {
    const l = f.record(r.log, 'log', ['level'])
    if (l?.level !== undefined) {
      if ((LOG_LEVELS as readonly unknown[]).includes(l.level)) logLevel = l.level as RegionConfig['logLevel']
      else f.problem('log.level', `one of ${LOG_LEVELS.join(', ')}`, l.level)
    }
  }
  const c = r.cache === undefined ? {} : (f.record(r.cache, 'cache', ['maxBytes', 'manifestMemory', 'smallBlobMemory', 'resumeAttempts', 'resumeBackoff']) ?? {})
  const manifestCacheBytes = f.size(c.manifestMemory ?? DEFAULTS.manifestCacheBytes, 'cache.manifestMemory') ?? DEFAULTS.manifestCacheBytes
  const cache = {
    maxBytes: f.size(c.maxBytes ?? DEFAULTS.maxBytes, 'cache.maxBytes') ?? 0,
    resumeAttempts: f.integer(c.resumeAttempts ?? DEFAULTS.resumeAttempts, 'cache.resumeAttempts', 0, 100) ?? 0,
    resumeBackoffMs: f.duration(c.resumeBackoff ?? DEFAULTS.resumeBackoff, 'cache.resumeBackoff') ?? 0,
    smallBlobMemory: f.size(c.smallBlobMemory ?? DEFAULTS.smallBlobMemory, 'cache.smallBlobMemory') ?? 0,
  }
  if (cache.maxBytes === 0) f.problem('cache.maxBytes', 'a size above zero', c.maxBytes)

  const replication = parseReplication(f, r.replication)
  const auth = r.auth === undefined ? undefined : parseAuth(f, r.auth)
  let tls: RegionConfig['tls']
  if (r.tls !== undefined) {
    const x = f.record(r.tls, 'tls', ['certFile', 'keyFile'])
    const certFile = x === undefined ? undefined : f.string(x.certFile, 'tls.certFile', { what: 'the path of a PEM certificate (chain)' })
    const keyFile = x === undefined ? undefined : f.string(x.keyFile, 'tls.keyFile', { what: 'the path of its PEM private key' })
    if (certFile !== undefined && keyFile !== undefined) tls = { certFile: resolve(certFile), keyFile: resolve(keyFile) }
  }
  let audit: RegionConfig['audit']
  if (r.audit !== undefined) {
    const a = f.record(r.audit, 'audit', ['file', 'maxBytes'])
    const file = a === undefined ? undefined : f.string(a.file, 'audit.file', { what: 'a file path, or "-" for stdout' })
    const maxBytes = a === undefined ? undefined : f.size(a.maxBytes ?? '100MiB', 'audit.maxBytes')
    if (file !== undefined && maxBytes !== undefined) audit = { file: file === '-' ? undefined : resolve(file), maxBytes }
  }
  const workers = f.integer(overrides.workers ?? r.workers ?? 1, overrides.workers !== undefined ? '--workers' : 'workers', 1, 64) ?? 1
  if (workers > 1 && state?.type === 'redis') {
    // the proxies of a region coordinate through Redis, each as one process; scale out with more proxies
    f.problem(overrides.workers !== undefined ? '--workers' : 'workers', '1 with state type redis (run more proxies instead)', workers)
  }
  if (workers > 1 && (store?.type !== 'fs' || l1 !== undefined)) {
    f.problem(overrides.workers !== undefined ? '--workers' : 'workers', '1 with an s3 or gcs store or an l1 tier (run more proxies instead)', workers)
  }
  if (store !== undefined && store.type !== 'fs' && l1 === undefined) {
    f.problem('l1', `a local disk tier ({path, maxBytes}) in front of the ${store.type} store`, undefined)
  }

  const upstreams: (UpstreamConfig & { isDefault: boolean })[] = []
  if (overrides.upstream !== undefined) {
    const u = parseUpstream(f, { name: 'default', url: overrides.upstream, default: true }, '--upstream')
    if (u) upstreams.push(u)
  }
  const list = r.upstreams === undefined ? [] : (f.list(r.upstreams, 'upstreams') ?? [])
  list.forEach((u, i) => {
    const parsed = parseUpstream(f, u, `upstreams[${i}]`)
    if (parsed === undefined) return
    if (overrides.upstream !== undefined) parsed.isDefault = false
    upstreams.push(parsed)
  })
  const names = new Set<string>(); const prefixes = new Set<string>()
  upstreams.forEach((u, i) => {
    if (names.has(u.name)) f.problem(`upstreams[${i}].name`, 'a name no other upstream has', u.name)
    names.add(u.name)
    if (u.prefix !== undefined) {
      if (prefixes.has(u.prefix)) f.problem(`upstreams[${i}].prefix`, 'a prefix no other upstream has', u.prefix)
      prefixes.add(u.prefix)
    }
  })
  const defaults = upstreams.filter(u => u.isDefault)
  if (defaults.length > 1) f.problem('upstreams', 'at most one upstream with default: true', `${defaults.length} defaults`)
  if (upstreams.length === 0) f.problem('upstreams', 'at least one upstream (or --upstream URL)', r.upstreams)

  if (f.problems.length > 0 || region === undefined || listen === undefined || data === undefined || store === undefined || state === undefined || replication === undefined) {
    return { problems: f.problems }
  }
  return {
    problems: [],
    config: {
      file, region, listen, data, workers, store, state, l1, logLevel, manifestCacheBytes, cache, upstreams,
      peer: { advertise: advertise ?? defaultAdvertise(listen) },
      replication: replication!,
      auth,
      audit,
      tls,
      defaultUpstream: defaults[0] ?? (upstreams.length === 1 ? upstreams[0] : undefined),
    },
  }
}

function parseStore (f: Fields, v: unknown, data: string): StoreConfig | undefined {
  if (v === undefined) return { type: 'fs', path: resolve(data, 'blobs') }
  const s = f.record(v, 'store', ['type', 'path', 'bucket', 'region', 'endpoint', 'prefix', 'forcePathStyle', 'apiEndpoint', 'projectId'])
  if (s === undefined) return undefined
  const allowed: Record<string, string[]> = { fs: ['type', 'path'], s3: ['type', 'bucket', 'region', 'endpoint', 'prefix', 'forcePathStyle'], gcs: ['type', 'bucket', 'prefix', 'apiEndpoint', 'projectId'] }
  const type = s.type ?? 'fs'
  if (typeof type !== 'string' || !(type in allowed)) return f.problem('store.type', 'one of fs, s3, gcs', s.type)
  for (const k of Object.keys(s)) if (!allowed[type]!.includes(k)) f.problem(`store.${k}`, `no such field for store type ${type} (fields: ${allowed[type]!.join(', ')})`, s[k])
  if (type === 'fs') {
    const p = s.path === undefined ? resolve(data, 'blobs') : f.string(s.path, 'store.path')
    return p === undefined ? undefined : { type: 'fs', path: resolve(p) }
  }
  const bucket = f.string(s.bucket, 'store.bucket', { pattern: /^[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]$/, what: 'a bucket name' })
  let prefix = s.prefix === undefined ? '' : f.string(s.prefix, 'store.prefix', { pattern: /^[A-Za-z0-9._/-]*$/, what: 'a key prefix such as "ferry/"' })
  if (prefix !== undefined && prefix !== '' && !prefix.endsWith('/')) prefix += '/'
  const endpointOf = (value: unknown, field: string): string | undefined => {
    if (value === undefined) return undefined
    const e = f.string(value, field, { what: 'an http:// or https:// URL' })
    if (e === undefined) return undefined
    try { const u = new URL(e); if (u.protocol === 'http:' || u.protocol === 'https:') return u.origin } catch { /* reported below */ }
    return f.problem(field, 'an http:// or https:// URL', e)
  }
  if (bucket === undefined || prefix === undefined) return undefined
  if (type === 's3') {
    const region = s.region === undefined ? undefined : f.string(s.region, 'store.region')
    const endpoint = endpointOf(s.endpoint, 'store.endpoint')
    const forcePathStyle = s.forcePathStyle === undefined ? endpoint !== undefined : f.boolean(s.forcePathStyle, 'store.forcePathStyle')
    if (forcePathStyle === undefined) return undefined
    return { type: 's3', bucket, region, endpoint, prefix, forcePathStyle }
  }
  const apiEndpoint = endpointOf(s.apiEndpoint, 'store.apiEndpoint')
  const projectId = s.projectId === undefined ? undefined : f.string(s.projectId, 'store.projectId')
  return { type: 'gcs', bucket, prefix, apiEndpoint, projectId }
}

function parseState (f: Fields, v: unknown, region: string): StateConfig | undefined {
  if (v === undefined) return { type: 'embedded' }
  const s = f.record(v, 'state', ['type', 'url', 'passwordEnv', 'keyPrefix', 'lease'])
  if (s === undefined) return undefined
  if (s.type === 'embedded') {
    for (const k of Object.keys(s)) if (k !== 'type') f.problem(`state.${k}`, 'no such field for state type embedded', s[k])
    return { type: 'embedded' }
  }
  if (s.type !== 'redis') return f.problem('state.type', 'one of embedded, redis', s.type)
  const url = f.string(s.url, 'state.url', { what: 'a redis:// or rediss:// URL' })
  if (url !== undefined) {
    let u: URL | undefined
    try { u = new URL(url) } catch { /* reported below */ }
    if (u === undefined || (u.protocol !== 'redis:' && u.protocol !== 'rediss:')) f.problem('state.url', 'a redis:// or rediss:// URL', url)
    else if (u.password !== '') f.problem('state.url', 'a URL without a password (name the variable holding it in state.passwordEnv)', `${u.protocol}//${u.username}:***@${u.host}${u.pathname}`)
  }
  const passwordEnv = s.passwordEnv === undefined ? undefined : f.string(s.passwordEnv, 'state.passwordEnv', { pattern: /^[A-Za-z_][A-Za-z0-9_]*$/, what: 'the NAME of an environment variable holding the password' })
  const keyPrefix = f.string(s.keyPrefix ?? `ferry:${region}:`, 'state.keyPrefix', { pattern: /^[A-Za-z0-9:._-]{1,64}$/, what: 'a key prefix such as "ferry:eu-west:"' })
  const leaseMs = f.duration(s.lease ?? '10s', 'state.lease')
  if (leaseMs !== undefined && leaseMs < 1000) f.problem('state.lease', 'at least 1s', s.lease)
  if (url === undefined || keyPrefix === undefined || leaseMs === undefined || f.problems.length > 0) return undefined
  return { type: 'redis', url, passwordEnv, keyPrefix, leaseMs }
}

function defaultAdvertise (listen: { host: string, port: number }): string {
  const wildcard = listen.host === '0.0.0.0' || listen.host === '::' || listen.host === ''
  const host = wildcard ? hostname() : listen.host
  return `http://${host.includes(':') ? `[${host}]` : host}:${listen.port}`
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
const GLOB = /^[A-Za-z0-9._\-/*:]+$/

function parseReplication (f: Fields, v: unknown): ReplicationConfig | undefined {
  const r = v === undefined ? {} : f.record(v, 'replication', ['secretEnv', 'peers', 'rules', 'concurrency', 'metricsListen', 'fallback', 'fallbackTimeout', 'attempts', 'edge'])
  if (r === undefined) return undefined
  const secretEnv = r.secretEnv === undefined ? undefined : f.string(r.secretEnv, 'replication.secretEnv', { pattern: ENV_NAME, what: 'the NAME of an environment variable holding the secret' })
  const peers: PeerConfig[] = []
  const list = r.peers === undefined ? [] : (f.list(r.peers, 'replication.peers') ?? [])
  list.forEach((p, i) => {
    const field = `replication.peers[${i}]`
    const pr = f.record(p, field, ['name', 'url', 'credentials', 'caFile', 'insecure'])
    if (pr === undefined) return
    const name = f.string(pr.name, `${field}.name`, { pattern: UPSTREAM_NAME, what: 'a short lowercase name ([a-z0-9._-])' })
    const url = parseRegistryUrl(f, pr.url, `${field}.url`)
    let credentials: Credentials | undefined
    if (pr.credentials !== undefined) {
      const c = f.record(pr.credentials, `${field}.credentials`, ['username', 'passwordEnv'])
      const username = c === undefined ? undefined : f.string(c.username, `${field}.credentials.username`)
      const passwordEnv = c === undefined ? undefined : f.string(c.passwordEnv, `${field}.credentials.passwordEnv`, { pattern: ENV_NAME, what: 'the NAME of an environment variable holding the secret' })
      if (username !== undefined && passwordEnv !== undefined) credentials = { username, passwordEnv }
    }
    const caFile = pr.caFile === undefined ? undefined : f.string(pr.caFile, `${field}.caFile`)
    const insecure = pr.insecure === undefined ? false : f.boolean(pr.insecure, `${field}.insecure`)
    if (name !== undefined && peers.some(x => x.name === name)) f.problem(`${field}.name`, 'a name no other peer has', name)
    if (name !== undefined && url !== undefined && insecure !== undefined) peers.push({ name, url, credentials, caFile, insecure })
  })
  const names = peers.map(p => p.name)
  const rules: ReplicationRule[] = []
  const ruleList = r.rules === undefined ? [{}] : (f.list(r.rules, 'replication.rules') ?? [])
  ruleList.forEach((x, i) => {
    const field = `replication.rules[${i}]`
    const rr = f.record(x, field, ['repositories', 'tags', 'peers'])
    if (rr === undefined) return
    const globs = (value: unknown, where: string): string[] => {
      const g = value === undefined ? ['**'] : (f.strings(value, where) ?? [])
      for (const p of g) if (!GLOB.test(p)) f.problem(where, 'glob patterns of names ([A-Za-z0-9._-/:] and *)', p)
      return g
    }
    const repositories = globs(rr.repositories, `${field}.repositories`)
    const tags = globs(rr.tags, `${field}.tags`)
    const to = rr.peers === undefined ? names : (f.strings(rr.peers, `${field}.peers`) ?? [])
    for (const p of to) if (!names.includes(p)) f.problem(`${field}.peers`, `names of peers in replication.peers (${names.join(', ') || 'none'})`, p)
    rules.push({ repositories, tags, peers: to })
  })
  const concurrency = f.integer(r.concurrency ?? 4, 'replication.concurrency', 1, 64)
  const metricsListen = r.metricsListen === undefined ? undefined : parseListen(f, r.metricsListen, 'replication.metricsListen')
  const fallback = r.fallback === undefined ? peers.length > 0 : f.boolean(r.fallback, 'replication.fallback')
  const fallbackTimeoutMs = f.duration(r.fallbackTimeout ?? '2s', 'replication.fallbackTimeout')
  const attempts = f.integer(r.attempts ?? 5, 'replication.attempts', 1, 100)
  let edge: string | undefined
  if (r.edge !== undefined) {
    const e = f.string(r.edge, 'replication.edge', { what: 'an http:// URL of this region\'s edge' })
    try { if (e !== undefined) edge = new URL(e).origin } catch { f.problem('replication.edge', 'an http:// URL of this region\'s edge', e) }
  }
  if (concurrency === undefined || fallback === undefined || fallbackTimeoutMs === undefined || attempts === undefined) return undefined
  return { secretEnv, peers, rules, concurrency, metricsListen, fallback, fallbackTimeoutMs, attempts, edge }
}

const ROLES = ['reader', 'writer', 'admin'] as const
const WHO = /^(anonymous|replicator|(user|group|robot):[A-Za-z0-9._@-]+)$/

function parseAuth (f: Fields, v: unknown): AuthConfig | undefined {
  const r = f.record(v, 'auth', ['htpasswd', 'users', 'groups', 'token', 'access'])
  if (r === undefined) return undefined
  const htpasswd = r.htpasswd === undefined ? undefined : f.string(r.htpasswd, 'auth.htpasswd', { what: 'the path of an htpasswd file (bcrypt entries)' })
  const users: Record<string, string> = {}
  for (const [name, hash] of Object.entries(r.users === undefined ? {} : f.record(r.users, 'auth.users', undefined) ?? {})) {
    if (typeof hash !== 'string' || !/^\$2[aby]\$\d\d\$.{53}$/.test(hash)) f.problem(`auth.users.${name}`, 'a bcrypt hash ($2b$...), never a password', '(not shown)')
    else users[name] = hash
  }
  if (r.htpasswd === undefined && r.users === undefined) f.problem('auth', 'an htpasswd file or users (or both)', undefined)
  const groups: Record<string, string[]> = {}
  if (r.groups !== undefined) {
    const g = f.record(r.groups, 'auth.groups', undefined)
    for (const [name, members] of Object.entries(g ?? {})) groups[name] = f.strings(members, `auth.groups.${name}`) ?? []
  }
  let token: AuthConfig['token']
  if (r.token !== undefined) {
    const t = f.record(r.token, 'auth.token', ['keyFile', 'service', 'ttl', 'realm'])
    const keyFile = t === undefined ? undefined : f.string(t.keyFile, 'auth.token.keyFile', { what: 'the path of a PKCS#8 PEM private key (EC P-256 or RSA)' })
    const service = t === undefined ? undefined : f.string(t.service ?? 'ferry', 'auth.token.service')
    const ttl = t === undefined ? undefined : f.duration(t.ttl ?? '5m', 'auth.token.ttl')
    const realm = t?.realm === undefined ? undefined : f.string(t.realm, 'auth.token.realm', { what: 'the URL clients fetch tokens from' })
    if (keyFile !== undefined && service !== undefined && ttl !== undefined) token = { keyFile: resolve(keyFile), service, ttlSeconds: Math.max(1, Math.round(ttl / 1000)), realm }
  }
  const access: { repositories: string[], allow: Record<string, 'reader' | 'writer' | 'admin'> }[] = []
  for (const [i, x] of (f.list(r.access ?? [], 'auth.access') ?? []).entries()) {
    const field = `auth.access[${i}]`
    const a = f.record(x, field, ['repositories', 'allow'])
    if (a === undefined) continue
    const repositories = f.strings(a.repositories, `${field}.repositories`) ?? []
    const allow: Record<string, 'reader' | 'writer' | 'admin'> = {}
    for (const [who, role] of Object.entries(f.record(a.allow, `${field}.allow`, undefined) ?? {})) {
      if (!WHO.test(who)) f.problem(`${field}.allow`, '"anonymous", "replicator", "user:NAME", "group:NAME" or "robot:NAME"', who)
      else if (!(ROLES as readonly unknown[]).includes(role)) f.problem(`${field}.allow.${who}`, `one of ${ROLES.join(', ')}`, role)
      else allow[who] = role as 'reader' | 'writer' | 'admin'
    }
    access.push({ repositories, allow })
  }
  return { htpasswd: htpasswd === undefined ? undefined : resolve(htpasswd), users, groups, token, access }
}
