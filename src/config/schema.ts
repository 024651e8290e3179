// The region file: one schema, its defaults, and the checks. A region file is
// YAML (regions/*.yaml); see README "Configuration" for every field.
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

export interface RegionConfig {
  readonly file: string
  readonly region: string
  readonly listen: { readonly host: string, readonly port: number }
  readonly data: string
  readonly store: { readonly type: 'fs', readonly path: string }
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

function parseUpstream (f: Fields, v: unknown, field: string): (UpstreamConfig & { isDefault: boolean }) | undefined {
  const r = f.record(v, field, ['name', 'url', 'prefix', 'aliases', 'default', 'dockerHub', 'tagTTL', 'staleIfError', 'credentials', 'caFile', 'insecure', 'connections', 'timeouts'])
  if (r === undefined) return undefined
  const name = f.string(r.name, `${field}.name`, { pattern: UPSTREAM_NAME, what: 'a short lowercase name ([a-z0-9._-])' })
  const urlText = f.string(r.url, `${field}.url`, { what: 'an http:// or https:// URL' })
  let url: URL | undefined
  if (urlText !== undefined) {
    try { url = new URL(urlText) } catch { /* reported below */ }
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || (url.pathname !== '/' && url.pathname !== '')) {
      f.problem(`${field}.url`, 'an http:// or https:// URL with no path and no credentials', urlText)
      url = undefined
    }
  }
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
  const r = f.record(doc ?? {}, '', ['region', 'listen', 'data', 'workers', 'store', 'log', 'cache', 'upstreams']) ?? {}
  const region = f.string(r.region ?? 'local', 'region', { pattern: /^[a-z0-9][a-z0-9-]{0,62}$/, what: 'a lowercase region name ([a-z0-9-])' })
  const listen = parseListen(f, overrides.listen ?? r.listen ?? DEFAULTS.listen, overrides.listen ? '--listen' : 'listen')
  const dataText = f.string(overrides.data ?? r.data ?? DEFAULTS.data, overrides.data ? '--data' : 'data', { what: 'a folder path' })
  const data = dataText === undefined ? undefined : (isAbsolute(dataText) ? dataText : resolve(dataText))

  let storePath = data === undefined ? undefined : resolve(data, 'blobs')
  if (r.store !== undefined) {
    const s = f.record(r.store, 'store', ['type', 'path'])
    if (s !== undefined) {
      if (s.type !== 'fs') f.problem('store.type', '"fs" (s3 and gcs arrive with regions)', s.type)
      if (s.path !== undefined) { const p = f.string(s.path, 'store.path'); if (p !== undefined) storePath = resolve(p) }
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

  const workers = f.integer(overrides.workers ?? r.workers ?? 1, overrides.workers !== undefined ? '--workers' : 'workers', 1, 64) ?? 1

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

  if (f.problems.length > 0 || region === undefined || listen === undefined || data === undefined || storePath === undefined) {
    return { problems: f.problems }
  }
  return {
    problems: [],
    config: {
      file, region, listen, data, workers, store: { type: 'fs', path: storePath }, logLevel, manifestCacheBytes, cache, upstreams,
      defaultUpstream: defaults[0] ?? (upstreams.length === 1 ? upstreams[0] : undefined),
    },
  }
}
