// A region file (and the command line's overrides) to a RegionConfig, or the
// list of every problem in it: each with the field, what was expected (the
// rule, from schema.ts) and what was there. Checks that span fields run on
// the document as written, so one problem never hides another.
import { hostname } from 'node:os'
import { isAbsolute, resolve } from 'node:path'
import * as v from 'valibot'
import { parseDuration, parseSize } from '../common/units.ts'
import type { PeerConfig, RegionConfig, StoreConfig, UpstreamConfig } from './region-config.ts'
import { LISTEN_RE, regionFile, type ValidRegionFile } from './schema.ts'

export interface ConfigProblem { readonly field: string, readonly expected: string, readonly got: string }

export class ConfigError extends Error {
  readonly file: string
  readonly problems: readonly ConfigProblem[]
  constructor (file: string, problems: readonly ConfigProblem[]) {
    super(problems.map(p => `${file}: ${p.field}: expected ${p.expected}, got ${p.got}`).join('\n'))
    this.name = 'ConfigError'
    this.file = file
    this.problems = problems
  }
}

/** Overrides from the command line (`--listen`, `--data`, `--upstream`, `--workers`). */
export interface Overrides { listen?: string | undefined, data?: string | undefined, upstream?: string | undefined, workers?: number | undefined }

export function describe (v: unknown): string {
  if (v === undefined) return 'nothing'
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'a list'
  if (typeof v === 'object') return 'a mapping'
  const s = JSON.stringify(v)
  return s.length > 60 ? s.slice(0, 57) + '...' : s
}

/** The names Docker Hub goes by; an upstream at one of them is Docker Hub (`library/` for one-component names). */
export const DOCKER_HUB_HOSTS: readonly string[] = ['registry-1.docker.io', 'index.docker.io', 'docker.io', 'registry.hub.docker.com']

type Doc = Record<string, unknown>
const isDoc = (v: unknown): v is Doc => typeof v === 'object' && v !== null && !Array.isArray(v)

export function parseRegion (doc: unknown, file: string, overrides: Overrides = {}): { config?: RegionConfig, problems: ConfigProblem[] } {
  const input: Doc = isDoc(doc) ? { ...doc } : doc === undefined || doc === null ? {} : { '': doc }
  if (overrides.listen !== undefined) input.listen = overrides.listen
  if (overrides.data !== undefined) input.data = overrides.data
  if (overrides.workers !== undefined) input.workers = overrides.workers
  if (overrides.upstream !== undefined) {
    const listed = Array.isArray(input.upstreams) ? input.upstreams : []
    input.upstreams = [{ name: 'default', url: overrides.upstream, default: true }, ...listed.map(u => isDoc(u) ? { ...u, default: false } : u)]
  }
  const fieldOf = (path: readonly PropertyKey[]): string => fieldName(path, overrides)
  const problems: ConfigProblem[] = []
  const result = v.safeParse(regionFile, input, { abortEarly: false })
  if (!result.success) for (const issue of result.issues) problems.push(problemOf(issue, input, fieldOf))
  problems.push(...crossChecks(input, fieldOf))
  const unique = dedupe(problems)
  if (unique.length > 0 || !result.success) return { problems: unique }
  return { config: resolveRegion(result.output, file), problems: [] }
}

function fieldName (path: readonly PropertyKey[], overrides: Overrides): string {
  const parts = [...path]
  if (overrides.upstream !== undefined && parts[0] === 'upstreams' && typeof parts[1] === 'number') {
    if (parts[1] === 0) return ['--upstream', ...parts.slice(2).map(String)].join('.')
    parts[1] = parts[1] - 1
  }
  if (parts.length === 1 && (parts[0] === 'listen' || parts[0] === 'data' || parts[0] === 'workers') && overrides[parts[0]] !== undefined) return `--${parts[0]}`
  let out = ''
  for (const p of parts) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`
  return out
}

function at (doc: unknown, path: readonly PropertyKey[]): unknown {
  let v = doc
  for (const p of path) v = isDoc(v) || Array.isArray(v) ? (v as Record<PropertyKey, unknown>)[p] : undefined
  return v
}

/** What a problem shows of the value there: never a secret. */
function shown (path: readonly PropertyKey[], value: unknown): string {
  if (path[0] === 'auth' && path[1] === 'users') return '"(not shown)"'
  if (typeof value === 'string' && /^rediss?:\/\//.test(value)) {
    try {
      const u = new URL(value)
      if (u.password !== '') return describe(`${u.protocol}//${u.username}:***@${u.host}${u.pathname === '/' ? '' : u.pathname}`)
    } catch { /* shown as is */ }
  }
  return describe(value)
}

function problemOf (issue: v.BaseIssue<unknown>, input: Doc, fieldOf: (path: readonly PropertyKey[]) => string): ConfigProblem {
  const items = issue.path ?? []
  const path = items.map(i => i.key as PropertyKey)
  const last = items[items.length - 1]
  if (issue.type === 'strict_object' || last?.origin === 'key') {
    // an unknown field, or a record's key that breaks its rule: the key itself is what was there
    const onKey = last?.origin === 'key' && issue.type !== 'strict_object'
    return { field: fieldOf(onKey ? path.slice(0, -1) : path), expected: issue.message, got: describe(path[path.length - 1]) }
  }
  return { field: fieldOf(path), expected: issue.message, got: shown(path, at(input, path)) }
}

function dedupe (problems: readonly ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>()
  return problems.filter(p => {
    const key = `${p.field}\n${p.expected}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

/** The rules that span fields, on the document as written (whatever else is wrong with it). */
function crossChecks (input: Doc, fieldOf: (path: readonly PropertyKey[]) => string): ConfigProblem[] {
  const out: ConfigProblem[] = []
  const problem = (path: PropertyKey[], expected: string, got: unknown): void => { out.push({ field: fieldOf(path), expected, got: describe(got) }) }
  const store = isDoc(input.store) ? input.store : {}
  const state = isDoc(input.state) ? input.state : {}
  const storeType = typeof store.type === 'string' ? store.type : 'fs'
  const workers = typeof input.workers === 'number' ? input.workers : 1
  if (workers > 1 && state.type === 'redis') {
    // the proxies of a region coordinate through Redis, each as one process; scale out with more proxies
    problem(['workers'], '1 with state type redis (run more proxies instead)', workers)
  }
  if (workers > 1 && (storeType !== 'fs' || input.l1 !== undefined)) problem(['workers'], '1 with an s3 or gcs store or an l1 tier (run more proxies instead)', workers)
  if ((storeType === 's3' || storeType === 'gcs') && input.l1 === undefined) {
    problem(['l1'], `a local disk tier ({path, maxBytes}) in front of the ${storeType} store`, undefined)
  }

  const upstreams = Array.isArray(input.upstreams) ? input.upstreams.filter(isDoc) : []
  const hostedAny = Array.isArray(input.hosted) && input.hosted.length > 0
  // an air-gapped site serves what it imported and asks nobody
  if (upstreams.length === 0 && !hostedAny) problem(['upstreams'], 'at least one upstream (or --upstream URL), or hosted namespaces (an air-gapped site)', input.upstreams)
  const names = new Set<unknown>(); const prefixes = new Set<unknown>()
  upstreams.forEach((u, i) => {
    if (names.has(u.name)) problem(['upstreams', i, 'name'], 'a name no other upstream has', u.name)
    names.add(u.name)
    if (u.prefix !== undefined) {
      if (prefixes.has(u.prefix)) problem(['upstreams', i, 'prefix'], 'a prefix no other upstream has', u.prefix)
      prefixes.add(u.prefix)
    }
  })
  const defaults = upstreams.filter(u => u.default === true)
  if (defaults.length > 1) problem(['upstreams'], 'at most one upstream with default: true', `${defaults.length} defaults`)
  if (upstreams.length > 1) {
    // every repository has one name (<prefix>/<path>): two upstreams without a prefix would share names
    upstreams.forEach((u, i) => {
      if (u.prefix === undefined && u.default !== true) problem(['upstreams', i, 'prefix'], 'a prefix (only the default upstream may have none: set default: true on one)', undefined)
    })
  }

  const replication = isDoc(input.replication) ? input.replication : {}
  const peers = Array.isArray(replication.peers) ? replication.peers.filter(isDoc) : []
  const peerNames = peers.map(p => p.name)
  peers.forEach((p, i) => { if (peerNames.indexOf(p.name) !== i) problem(['replication', 'peers', i, 'name'], 'a name no other peer has', p.name) })
  if (Array.isArray(replication.rules)) {
    replication.rules.forEach((r, i) => {
      if (!isDoc(r) || !Array.isArray(r.peers)) return
      for (const p of r.peers) if (!peerNames.includes(p)) problem(['replication', 'rules', i, 'peers'], `names of peers in replication.peers (${peerNames.join(', ') || 'none'})`, p)
    })
  }
  const hosted = Array.isArray(input.hosted) ? input.hosted.filter(isDoc) : []
  hosted.forEach((h, i) => {
    if (typeof h.prefix !== 'string') return
    const clash = hosted.findIndex(o => o !== h && typeof o.prefix === 'string' && (o.prefix.startsWith(h.prefix as string) || (h.prefix as string).startsWith(o.prefix)))
    if (clash >= 0 && clash < i) problem(['hosted', i, 'prefix'], `a prefix no other hosted namespace overlaps (hosted[${clash}] does)`, h.prefix)
    for (const [j, u] of upstreams.entries()) {
      // a name under both would be ambiguous: an image pushed here, or the upstream's
      if (typeof u.prefix === 'string' && ((h.prefix as string).startsWith(`${u.prefix}/`) || `${u.prefix}/`.startsWith(h.prefix))) {
        problem(['hosted', i, 'prefix'], `a prefix no upstream's prefix overlaps (upstreams[${j}] has "${u.prefix}")`, h.prefix)
      }
    }
  })
  if (isDoc(input.auth) && input.auth.htpasswd === undefined && input.auth.users === undefined && input.auth.ldap === undefined && input.auth.oidc === undefined) problem(['auth'], 'an htpasswd file, users, ldap or oidc (any of them)', undefined)
  const advertise = process.env.FERRY_PEER_ADVERTISE
  if (advertise !== undefined) {
    let ok = false
    try { const u = new URL(advertise); ok = u.protocol === 'http:' && (u.pathname === '/' || u.pathname === '') } catch { /* reported below */ }
    if (!ok) out.push({ field: 'FERRY_PEER_ADVERTISE', expected: 'an http://HOST:PORT URL', got: describe(advertise) })
  }
  return out
}

/** A valid document as ferry runs it. */
function resolveRegion (d: ValidRegionFile, file: string): RegionConfig {
  const data = isAbsolute(d.data) ? d.data : resolve(d.data)
  const listen = parseListen(d.listen)
  const ms = (v: string | number): number => parseDuration(v)!
  const bytes = (v: string | number): number => parseSize(v)!
  const upstreams: (UpstreamConfig & { isDefault: boolean })[] = (d.upstreams ?? []).map(u => {
    const url = new URL(u.url)
    return {
      name: u.name,
      url,
      prefix: u.prefix,
      aliases: [...new Set([url.host, ...u.aliases].map(a => a.toLowerCase()))],
      dockerHub: u.dockerHub ?? DOCKER_HUB_HOSTS.includes(url.hostname),
      tagTTLMs: ms(u.tagTTL),
      staleIfErrorMs: ms(u.staleIfError),
      notFoundTTLMs: ms(u.notFoundTTL),
      credentials: u.credentials,
      caFile: u.caFile,
      insecure: u.insecure,
      connections: u.connections,
      timeouts: { connectMs: ms(u.timeouts.connect), headersMs: ms(u.timeouts.headers), bodyIdleMs: ms(u.timeouts.bodyIdle) },
      isDefault: u.default,
    }
  })
  const r = d.replication
  const peers: PeerConfig[] = r.peers.map(p => ({ name: p.name, url: new URL(p.url), credentials: p.credentials, caFile: p.caFile, insecure: p.insecure }))
  const advertise = process.env.FERRY_PEER_ADVERTISE ?? d.peer?.advertise
  const a = d.auth
  return {
    file,
    region: d.region,
    listen,
    hostnames: [...new Set(d.hostnames.map(h => h.toLowerCase()))],
    data,
    workers: d.workers,
    store: resolveStore(d.store, data),
    state: d.state.type === 'redis'
      ? { type: 'redis', url: d.state.url, passwordEnv: d.state.passwordEnv, keyPrefix: d.state.keyPrefix ?? `ferry:${d.region}:`, leaseMs: ms(d.state.lease) }
      : { type: 'embedded' },
    l1: d.l1 === undefined ? undefined : { path: resolve(d.l1.path), maxBytes: bytes(d.l1.maxBytes) },
    peer: { advertise: advertise !== undefined ? new URL(advertise).origin : defaultAdvertise(listen) },
    replication: {
      secretEnv: r.secretEnv,
      peers,
      rules: (r.rules ?? [{ repositories: ['**'], tags: ['**'], peers: undefined, deletes: false }]).map(x => ({ repositories: x.repositories, tags: x.tags, peers: x.peers ?? peers.map(p => p.name), deletes: x.deletes })),
      concurrency: r.concurrency,
      metricsListen: r.metricsListen === undefined ? undefined : parseListen(r.metricsListen),
      fallback: r.fallback ?? peers.length > 0,
      fallbackTimeoutMs: ms(r.fallbackTimeout),
      attempts: r.attempts,
      edge: r.edge === undefined ? undefined : new URL(r.edge).origin,
    },
    auth: a === undefined
      ? undefined
      : {
          htpasswd: a.htpasswd === undefined ? undefined : resolve(a.htpasswd),
          users: a.users,
          groups: a.groups,
          oidc: a.oidc === undefined ? undefined : { issuer: a.oidc.issuer, audience: a.oidc.audience, usernameClaim: a.oidc.usernameClaim, groupsClaim: a.oidc.groupsClaim, clientSecretEnv: a.oidc.clientSecretEnv, redirectUri: a.oidc.redirectUri },
          ldap: a.ldap === undefined
            ? undefined
            : {
                url: a.ldap.url,
                startTLS: a.ldap.startTLS,
                caFile: a.ldap.caFile === undefined ? undefined : resolve(a.ldap.caFile),
                bindDN: a.ldap.bindDN,
                bindPasswordEnv: a.ldap.bindPasswordEnv,
                userBase: a.ldap.userBase,
                userFilter: a.ldap.userFilter,
                groupAttribute: a.ldap.groupAttribute,
                groupSearch: a.ldap.groupSearch,
                cacheTTLMs: ms(a.ldap.cacheTTL),
                timeoutMs: ms(a.ldap.timeout),
              },
          token: a.token === undefined ? undefined : { keyFile: resolve(a.token.keyFile), service: a.token.service, ttlSeconds: Math.max(1, Math.round(ms(a.token.ttl) / 1000)), realm: a.token.realm },
          access: a.access,
        },
    tls: d.tls === undefined ? undefined : { certFile: resolve(d.tls.certFile), keyFile: resolve(d.tls.keyFile) },
    limits: {
      upstreamFetchesPerSecond: d.limits.upstreamFetchesPerSecond,
      upstreamFetchBurst: d.limits.upstreamFetchBurst,
      idleTimeoutMs: ms(d.limits.idleTimeout),
      headersTimeoutMs: ms(d.limits.headersTimeout),
      connections: d.limits.connections,
      connectionsPerClient: d.limits.connectionsPerClient,
    },
    console: { enabled: d.console.enabled },
    webhooks: d.webhooks.map(w => ({ name: w.name, url: new URL(w.url), events: w.events, secretEnv: w.secretEnv, attempts: w.attempts, timeoutMs: ms(w.timeout), maxQueued: w.maxQueued })),
    metrics: { listen: d.metrics.listen === undefined ? undefined : parseListen(d.metrics.listen), tokenEnv: d.metrics.tokenEnv },
    audit: d.audit === undefined ? undefined : { file: d.audit.file === '-' ? undefined : resolve(d.audit.file), maxBytes: bytes(d.audit.maxBytes) },
    logLevel: d.log.level,
    manifestCacheBytes: bytes(d.cache.manifestMemory),
    cache: {
      maxBytes: bytes(d.cache.maxBytes),
      resumeAttempts: d.cache.resumeAttempts,
      resumeBackoffMs: ms(d.cache.resumeBackoff),
      smallBlobMemory: bytes(d.cache.smallBlobMemory),
    },
    upstreams,
    defaultUpstream: upstreams.find(u => u.isDefault) ?? (upstreams.length === 1 ? upstreams[0] : undefined),
    hosted: d.hosted.map(h => ({ prefix: h.prefix, quota: h.quota === undefined ? undefined : bytes(h.quota) })),
    gc: { intervalMs: ms(d.gc.interval), graceMs: ms(d.gc.grace), uploadsMs: ms(d.gc.uploads) },
  }
}

function resolveStore (s: ValidRegionFile['store'], data: string): StoreConfig {
  const prefix = (p: string | undefined): string => p === undefined || p === '' || p.endsWith('/') ? p ?? '' : `${p}/`
  switch (s.type) {
    case 'fs': return { type: 'fs', path: resolve(s.path ?? resolve(data, 'blobs')) }
    case 's3': {
      const endpoint = s.endpoint === undefined ? undefined : new URL(s.endpoint).origin
      return { type: 's3', bucket: s.bucket, region: s.region, endpoint, prefix: prefix(s.prefix), forcePathStyle: s.forcePathStyle ?? endpoint !== undefined }
    }
    case 'gcs': return { type: 'gcs', bucket: s.bucket, prefix: prefix(s.prefix), apiEndpoint: s.apiEndpoint === undefined ? undefined : new URL(s.apiEndpoint).origin, projectId: s.projectId }
  }
}

export function parseListen (text: string): { host: string, port: number } {
  const m = LISTEN_RE.exec(text)!
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port: Number(m[3]) }
}

function defaultAdvertise (listen: { host: string, port: number }): string {
  const wildcard = listen.host === '0.0.0.0' || listen.host === '::' || listen.host === ''
  const host = wildcard ? hostname() : listen.host
  return `http://${host.includes(':') ? `[${host}]` : host}:${listen.port}`
}
