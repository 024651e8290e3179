// Assemble one edge proxy from a region config and run it until a signal.
import cluster from 'node:cluster'
import { readFileSync, unwatchFile, watchFile } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import type { Server as HttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { BlobCache } from './blobs/cache.ts'
import { committer } from './blobs/commit.ts'
import { LocalFillTable, type FillTable } from './blobs/fill-table.ts'
import { NoLeases, RedisLeases } from './blobs/region-lease.ts'
import { cleanStaging } from './blobs/staging.ts'
import { MemorySource } from './blobs/sources/memory.ts'
import { PeerRegionSource } from './blobs/sources/peer-region.ts'
import { RegionPeers } from './blobs/sources/region-peer.ts'
import { StoreSource } from './blobs/sources/store.ts'
import { UpstreamSource } from './blobs/sources/upstream.ts'
import { ManifestStore } from './cache/manifest-store.ts'
import type { CacheIndex } from './eviction/cache-index.ts'
import { Eviction } from './eviction/eviction.ts'
import { RegionIndex } from './eviction/region-index.ts'
import { PrimaryLink } from './cluster/worker-side.ts'
import { AggregatorRegistry } from 'prom-client'
import { ListCache } from './cache/lists.ts'
import { ManifestCache } from './cache/manifests.ts'
import type { RegionConfig } from './config/region-config.ts'
import { closeBcryptPool, onBcryptCompare } from './auth/bcrypt-pool.ts'
import { LoginLimits } from './auth/login-limits.ts'
import { createEdgeServer } from './http/server.ts'
import { createMetricsServer } from './http/metrics-endpoint.ts'
import { Readiness } from './observe/readiness.ts'
import { RegionSecret } from './blobs/region-secret.ts'
import { boundedCache } from './common/bounded-cache.ts'
import { RepositoryListing } from './content/repository-listing.ts'
import { MissBudget } from './upstream/miss-budget.ts'
import { UploadRelay } from './http/upload-relay.ts'
import type { Services } from './http/handlers.ts'
import { HostedReads } from './content/hosted-reads.ts'
import { parseDigest, parseName, parseReference } from './oci/reference.ts'
import { BlobUnknown } from './oci/errors.ts'
import type { Body } from './io/body.ts'
import type { Pacing } from './upstream/rate-pacer.ts'
import { hostedHoldings } from './content/hosted-holdings.ts'
import { Collector } from './content/gc.ts'
import { gcMetrics, scheduleGc } from './content/gc-schedule.ts'
import { Linker } from './content/linker.ts'
import { Quotas } from './content/quotas.ts'
import { Targets } from './content/target.ts'
import { UploadOwners } from './content/upload-owners.ts'
import { UploadSessions } from './content/uploads.ts'
import { Writes } from './content/writes.ts'
import { AccessPolicy } from './auth/access.ts'
import { Gate } from './auth/gate.ts'
import { ConsoleApi } from './console/api.ts'
import { ContentViews } from './console/content-views.ts'
import { Sessions } from './console/session.ts'
import { StaticFiles } from './console/static-files.ts'
import { Traffic } from './console/traffic.ts'
import { Webhooks } from './observe/webhooks.ts'
import { deadLettersOf } from './observe/webhook-dead-letters.ts'
import { FileTrafficStore, FileUsageStore, LocalRoll, RedisRoll, RedisTrafficStore, RedisUsageStore } from './console/figure-stores.ts'
import { Usage } from './console/usage.ts'
import { HtpasswdSource, StaticUsers } from './auth/identity.ts'
import { IdentitySources, RobotSource } from './auth/robots.ts'
import { TokenService } from './auth/tokens.ts'
import { AuditLog } from './observe/audit.ts'
import { pino } from 'pino'
import { createLogger, type Logger } from './observe/logger.ts'
import { Metrics } from './observe/metrics.ts'
import { FsBlobStore } from './store/fs-blob-store.ts'
import { openBlobStore } from './store/open-store.ts'
import { openState } from './state/open-state.ts'
import { PeerRegions } from './upstream/peer-regions.ts'
import { Router } from './upstream/router.ts'
import { Upstream } from './upstream/upstream.ts'

export interface Running {
  readonly address: string
  readonly log: Logger
  /** What the region holds, asked in process (for commands that run an edge of their own). */
  readonly view: LocalView
  close (): Promise<void>
}

export interface LocalView {
  /** The repository as the region records it (an upstream's prefix and its path), or undefined when nothing serves the name. */
  canonical (name: string): string | undefined
  /** The repository holds this blob or manifest, and the region has its bytes. */
  holds (repo: string, kind: 'blob' | 'manifest', digest: string): Promise<boolean>
  /** The region has these bytes (under any repository). */
  hasBlob (digest: string): Promise<boolean>
  /** A verified local file becomes the blob (consumed); nothing if the region has it. */
  adoptBlob (digest: string, path: string, size: number): Promise<void>
  /** A hosted repository holds the blob from now on; false when the region does not have its bytes. */
  linkBlob (repo: string, digest: string): Promise<boolean>
  /** Bytes a fill of this blob running in this process has received so far (for a command's progress), or undefined. */
  filling (digest: string): number | undefined
  /** A blob's bytes as the region holds them (a fill running here included), or undefined; never fetched. */
  openBlob (digest: string): Promise<{ size: number, body: Body } | undefined>
  /** A manifest's bytes, if the region has them. */
  manifestBody (digest: string): Promise<{ mediaType: string, body: Buffer } | undefined>
  /** Put a manifest into a hosted repository, by digest or by tag, as a push does (its blobs and children must be held). */
  putManifest (repo: string, reference: string, mediaType: string, body: Buffer): Promise<void>
  /** Whether the name is in a hosted namespace (imports go only there). */
  hosted (repo: string): boolean
  /** The repository's tags. */
  tags (repo: string): Promise<string[]>
  /** Delete a tag of a hosted repository, as a push client's DELETE does (the bytes go with garbage collection). */
  deleteTag (repo: string, tag: string): Promise<void>
}

/**
 * A command's own edge (ferry mirror, export): loopback only, on a free
 * port, no credentials asked (nothing but the command talks to it), no
 * upstream budget of its own, a staging folder of its own (a proxy serving
 * the same data folder keeps its fills), and no garbage collection.
 */
export async function serveForCommand (config: RegionConfig, onPace?: (upstream: string, p: Pacing) => void): Promise<Running> {
  return await serve({
    ...config,
    listen: { host: '127.0.0.1', port: 0 },
    auth: undefined,
    audit: undefined,
    tls: undefined,
    metrics: { listen: undefined, tokenEnv: undefined },
    console: { enabled: false },
    limits: { ...config.limits, upstreamFetchesPerSecond: 0 },
    // what goes wrong reaches the report; the edge's own warnings would repeat it
    logLevel: config.logLevel === 'debug' || config.logLevel === 'trace' ? config.logLevel : 'error',
  }, 'single', { forCommand: true, ...(onPace !== undefined ? { onPace } : {}) })
}

/**
 * One edge proxy process. `single`: it owns the whole cache. `worker`: one of
 * several processes sharing the port; fills and the cache index are
 * coordinated by the primary (cluster/primary.ts).
 */
export async function serve (config: RegionConfig, mode: 'single' | 'worker' = 'single', opts: { forCommand?: boolean, onPace?: (upstream: string, p: Pacing) => void } = {}): Promise<Running> {
  // a command's stdout is its report: its edge logs to stderr
  const log = createLogger(config.logLevel, opts.forCommand === true ? pino.destination({ dest: 2, sync: false }) : undefined).child({ region: config.region, ...(mode === 'worker' ? { worker: cluster.worker?.id } : {}) })
  const metrics = new Metrics()
  const forCommand = opts.forCommand === true
  const staging = forCommand ? join(config.data, 'tmp', `command-${process.pid}`) : join(config.data, 'tmp')
  const store = await openBlobStore(config.store)
  // a bucket that does not exist or credentials that do not work are named now, not at the first miss
  store.probe().catch((err: unknown) => {
    log.error({ store: config.store.type, err: (err as Error).message }, 'the region\'s blob store is not usable: pulls that need it fail until it is')
  })
  const opened = await openState(config, log)
  const { state, redis } = opened
  const keyPrefix = config.state.type === 'redis' ? config.state.keyPrefix : ''
  const budget = config.limits.upstreamFetchesPerSecond > 0 ? new MissBudget(config.limits.upstreamFetchesPerSecond, config.limits.upstreamFetchBurst) : undefined
  const onPace = opts.onPace
  const upstreams = config.upstreams.map(u => new Upstream(u, metrics, budget, onPace === undefined ? undefined : p => { onPace(u.name, p) }))
  const fallback = upstreams.find(u => u.config === config.defaultUpstream)
  const router = new Router(upstreams, fallback)
  const closers: (() => Promise<void>)[] = []
  let index: CacheIndex
  let table: FillTable
  let metricsText: () => Promise<{ text: string, contentType: string }>
  await mkdir(staging, { recursive: true })
  if (mode === 'worker') {
    const link = new PrimaryLink()
    // constructing one installs prom-client's listener that answers the primary's metrics requests
    void new AggregatorRegistry()
    AggregatorRegistry.setRegistries([metrics.registry])
    index = link
    table = link
    metricsText = () => link.metrics()
    closers.push(async () => { link.close() })
  } else {
    await cleanStaging(staging, log)
    if (forCommand) closers.push(async () => { await rm(staging, { recursive: true, force: true }) })
    table = new LocalFillTable()
    metricsText = async () => ({ text: await metrics.text(), contentType: metrics.registry.contentType })
    if (redis !== undefined) {
      const regionIndex = new RegionIndex({ redis, prefix: keyPrefix, store, maxBytes: config.cache.maxBytes, keep: hostedHoldings(state, config.hosted.map(h => h.prefix)), owner: `${config.peer.advertise}/${process.pid}`, log, metrics })
      regionIndex.start()
      index = regionIndex
      closers.push(() => regionIndex.close())
    } else {
      const eviction = new Eviction(store, {
        maxBytes: config.cache.maxBytes,
        lowWatermark: 0.95,
        snapshotPath: join(config.data, 'state', 'recency.json'),
        snapshotEveryMs: 30_000,
        keep: hostedHoldings(state, config.hosted.map(h => h.prefix)),
        snapshotReadOnly: forCommand,
      }, log, metrics)
      await eviction.init()
      index = eviction
      closers.push(() => eviction.close())
    }
  }
  const memory = new MemorySource(config.cache.smallBlobMemory)
  let l1: StoreSource<FsBlobStore> | undefined
  if (config.l1 !== undefined) {
    await mkdir(config.l1.path, { recursive: true })
    const l1Store = new FsBlobStore(config.l1.path)
    const l1Eviction = new Eviction(l1Store, {
      maxBytes: config.l1.maxBytes,
      lowWatermark: 0.95,
      snapshotPath: join(config.data, 'state', 'l1-recency.json'),
      snapshotEveryMs: 30_000,
      snapshotReadOnly: forCommand,
    }, log.child({ tier: 'l1' }), metrics.l1)
    await l1Eviction.init()
    l1 = new StoreSource('l1', l1Store, l1Eviction, memory)
    closers.push(() => l1Eviction.close())
  }
  // a proxy listening on port 0 advertises the port it got
  let advertise = config.peer.advertise
  const regionSecret = redis !== undefined ? new RegionSecret(redis, keyPrefix) : undefined
  void regionSecret?.get()
  const regionPeers = regionSecret !== undefined ? new RegionPeers(regionSecret) : undefined
  const leases = redis !== undefined && config.state.type === 'redis'
    ? new RedisLeases({ redis, prefix: keyPrefix, leaseMs: config.state.leaseMs, peer: () => advertise, log, onFallback: () => metrics.leaseFallbacks.inc() })
    : new NoLeases()
  const takeoverMs = config.state.type === 'redis' ? config.state.leaseMs + 5000 : 0
  const onCommitted = (digest: string, size: number): void => {
    state.events.append({ kind: 'blob', digest, size, at: Date.now() }).catch((err: unknown) => {
      log.warn({ digest, err: (err as Error).message }, 'committed blob not recorded in the region stream')
    })
  }
  const regions = config.replication.fallback && config.replication.peers.length > 0
    ? new PeerRegions(config.replication.peers, config.replication.fallbackTimeoutMs, log)
    : undefined
  const region = new StoreSource('store', store, index, memory)
  const blobs = new BlobCache({
    memory, l1, store: region, table, staging, policy: config.cache, log, metrics,
    committer: committer(region, l1, onCommitted),
    feed: {
      leases, regionPeers, takeoverMs, log, metrics,
      peerRegions: regions !== undefined ? new PeerRegionSource(regions, log) : undefined,
      upstream: new UpstreamSource(),
    },
  })
  const linker = new Linker(state.links, log)
  const manifestStore = new ManifestStore({ store, state, staging, memoryBytes: config.manifestCacheBytes })
  const listing = new RepositoryListing(state.links, () => { metrics.repositoryListings.inc() })
  metrics.watchMemoryTier(() => ({ blobs: memory.bytes, manifests: manifestStore.memoryBytes }))
  const manifests = new ManifestCache({ manifests: manifestStore, state, linker, log, metrics, regions })
  const lists = new ListCache(state, log, metrics)
  // once per registry name (of the last 1,000), and ten names a minute at most (a client can make up names):
  // a node set up to mirror a registry through ferry that ferry does not mirror
  const foreignNs = boundedCache<string, true>(1000)
  let foreignNsWindow = { start: 0, logged: 0 }
  const targets = new Targets(router, config.hosted, config.hostnames, ns => {
    const key = ns.toLowerCase().slice(0, 255)
    if (foreignNs.has(key)) return
    if (Date.now() - foreignNsWindow.start > 60_000) foreignNsWindow = { start: Date.now(), logged: 0 }
    if (++foreignNsWindow.logged > 10) return
    foreignNs.set(key, true)
    log.warn({ ns: key }, 'refused ?ns= naming a registry no upstream serves (404): a node mirrors it through ferry; add it to an upstream\'s aliases, or to hostnames if it is ferry\'s own name')
  })
  const uploads = new UploadSessions(join(config.data, 'uploads'))
  await uploads.init(config.gc.uploadsMs)
  // abandoned uploads go while the process runs, not only at its next start
  const sweeper = setInterval(() => {
    uploads.sweep(config.gc.uploadsMs).then(n => { if (n > 0) log.info({ sessions: n }, 'abandoned upload sessions removed') }, (err: unknown) => {
      log.warn({ err: (err as Error).message }, 'upload sessions not swept; next interval')
    })
  }, Math.min(config.gc.intervalMs, config.gc.uploadsMs))
  sweeper.unref()
  closers.push(async () => { clearInterval(sweeper) })
  const quotas = new Quotas({ targets, state, store, gauge: metrics.namespaceBytes })
  const writes = new Writes({ state, manifests: manifestStore, blobs, uploads, quotas, log })
  if (config.hosted.length > 0 && !forCommand && (mode === 'single' || cluster.worker?.id === 1)) {
    const collector = new Collector({ state, store, manifests: manifestStore, hostedPrefixes: config.hosted.map(h => h.prefix), graceMs: config.gc.graceMs, log, metrics: gcMetrics(metrics) })
    const stop = scheduleGc({ collector, intervalMs: config.gc.intervalMs, redis, prefix: keyPrefix, owner: `${config.peer.advertise}/${process.pid}`, log })
    closers.push(async () => { stop() })
  }
  const secretEnv = config.replication.secretEnv
  const logins = new LoginLimits()
  onBcryptCompare(() => metrics.passwordChecks.inc())
  let gate: Gate | undefined
  let oidcSource: import('./auth/oidc.ts').OidcSource | undefined
  if (config.auth !== undefined) {
    const a = config.auth
    const robots = new RobotSource(state)
    // ldapts is loaded only for a region that names a directory
    const LdapSource = a.ldap !== undefined ? (await import('./auth/ldap.ts')).LdapSource : undefined
    const OidcSource = a.oidc !== undefined ? (await import('./auth/oidc.ts')).OidcSource : undefined
    oidcSource = a.oidc !== undefined && OidcSource !== undefined ? new OidcSource(a.oidc, log.child({ part: 'oidc' })) : undefined
    gate = new Gate({
      // the directory last: while it is down, robots and local users still log in
      identities: new IdentitySources([robots, new StaticUsers(a.users, a.groups), ...(a.htpasswd !== undefined ? [new HtpasswdSource(a.htpasswd, a.groups, log)] : []), ...(a.ldap !== undefined && LdapSource !== undefined ? [new LdapSource(a.ldap, log.child({ part: 'ldap' }))] : []), ...(oidcSource !== undefined ? [oidcSource] : [])]),
      policy: new AccessPolicy(a.access),
      limits: logins,
      tls: config.tls !== undefined,
      ...(a.token !== undefined ? { tokens: new TokenService(a.token), ...(a.token.realm !== undefined ? { realm: a.token.realm } : {}) } : {}),
      replicationSecret: () => secretEnv !== undefined ? process.env[secretEnv] || undefined : undefined,
    })
  }
  const audit = config.audit !== undefined ? new AuditLog(config.audit) : undefined
  const tlsFiles = config.tls
  const readTls = (): { cert: Buffer, key: Buffer } | undefined => tlsFiles === undefined ? undefined : { cert: readFileSync(tlsFiles.certFile), key: readFileSync(tlsFiles.keyFile) }
  // a region's proxies share no disk: an upload session started on one is relayed to it from the others
  const uploadRelay = redis !== undefined ? new UploadRelay() : undefined
  closers.push(async () => { await uploadRelay?.close() })
  const metricsEnv = config.metrics.tokenEnv
  const metricsToken = (): string | undefined => metricsEnv === undefined ? undefined : process.env[metricsEnv] || undefined
  const services: Services = {
    targets, blobs, manifests, lists, metrics, metricsText, writes, linker,
    hosted: new HostedReads(state, manifestStore),
    links: state.links,
    listing,
    replicationSecret: () => secretEnv !== undefined ? process.env[secretEnv] || undefined : undefined,
    logins,
    readiness: new Readiness([
      { name: 'state', run: () => opened.ping() },
      { name: 'store', run: () => store.probe() },
    ]),
    metricsAccess: { here: config.metrics.listen === undefined, token: metricsToken },
    ...(regionSecret !== undefined ? { regionSecret } : {}),
    ...(gate !== undefined ? { gate } : {}),
    ...(audit !== undefined ? { audit } : {}),
    ...(uploadRelay !== undefined && redis !== undefined ? { uploadRelay, uploadOwners: new UploadOwners({ redis, prefix: keyPrefix, self: () => advertise, log }) } : {}),
  }
  if (config.webhooks.length > 0 && !forCommand) {
    const webhooks = new Webhooks({
      hooks: config.webhooks,
      source: `ferry/${config.region}`,
      deadLetters: deadLettersOf(config, redis),
      log: log.child({ part: 'webhooks' }),
    })
    for (const u of upstreams) u.health.onDown = error => { webhooks.emit('upstream.down', u.name, { upstream: u.name, url: u.config.url.origin, error }) }
    ;(services as { webhooks?: Webhooks }).webhooks = webhooks
    closers.push(() => webhooks.close())
  }
  if (config.console.enabled && !forCommand) {
    const dir = join(config.data, 'state', 'console')
    const processId = mode === 'worker' ? `worker-${cluster.worker?.id ?? process.pid}` : 'main'
    // a region's figures are its proxies' together (in its Redis); one machine's, its processes' (files)
    const traffic = new Traffic(redis !== undefined ? new RedisTrafficStore(redis, keyPrefix) : new FileTrafficStore(dir, processId))
    const usage = new Usage(redis !== undefined ? new RedisUsageStore(redis, keyPrefix) : new FileUsageStore(dir, processId))
    const roll = redis !== undefined ? new RedisRoll(redis, keyPrefix, () => advertise) : new LocalRoll(() => advertise)
    await traffic.start(async () => Object.fromEntries((await metrics.upstreamBytes.get()).values.map(v => [String(v.labels.upstream), v.value])))
    await usage.start()
    const beat = (): void => { void roll.beat().catch(() => {}) }
    const beating = setInterval(beat, 10_000)
    beating.unref()
    setImmediate(beat)
    closers.push(async () => { clearInterval(beating); await traffic.close(); await usage.close() })
    const sessions = new Sessions(regionSecret !== undefined ? { regionSecret: () => regionSecret.get() } : { file: join(dir, 'session.key') }, { secure: config.tls !== undefined })
    const o = config.auth?.oidc
    const oidcSignIn = o !== undefined && o.clientSecretEnv !== undefined && o.redirectUri !== undefined && oidcSource !== undefined
      ? new (await import('./console/oidc-signin.ts')).OidcSignIn({ clientId: o.audience, clientSecretEnv: o.clientSecretEnv, redirectUri: o.redirectUri, usernameClaim: o.usernameClaim, groupsClaim: o.groupsClaim }, oidcSource.provider, sessions)
      : undefined
    const api = new ConsoleApi({
      ...(oidcSignIn !== undefined && oidcSource !== undefined ? { oidc: { signIn: oidcSignIn, remember: (user: string, until: number) => { oidcSource!.remember(user, until) } } } : {}),
      region: config.region,
      gate,
      sessions,
      views: new ContentViews({ state, manifests: manifestStore, targets, usage, listing }),
      traffic,
      proxies: roll,
      upstreams,
      state,
      metrics,
      cacheMaxBytes: config.cache.maxBytes,
      peers: config.replication.peers.map(p => p.name),
      auditFile: config.audit?.file,
    })
    ;(services as { console?: Services['console'] }).console = { api, files: new StaticFiles(), traffic, usage }
  }
  const server = createEdgeServer(services, log, config.limits, readTls())
  if (tlsFiles !== undefined) {
    // a renewed certificate is taken for new connections; open ones go on with the old
    const reload = (): void => {
      try {
        (server as HttpsServer).setSecureContext(readTls()!)
        log.info({ cert: tlsFiles.certFile }, 'TLS certificate reloaded')
      } catch (err) {
        log.error({ err: (err as Error).message }, 'TLS certificate not reloaded; keeping the one in use')
      }
    }
    for (const f of [tlsFiles.certFile, tlsFiles.keyFile]) watchFile(f, { interval: 1000 }, (now, before) => { if (now.mtimeMs !== before.mtimeMs) reload() })
    closers.push(async () => { for (const f of [tlsFiles.certFile, tlsFiles.keyFile]) unwatchFile(f) })
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.listen.port, config.listen.host, () => { server.off('error', reject); resolve() })
  })
  if (config.metrics.listen !== undefined) {
    const m = config.metrics.listen
    const metricsServer = createMetricsServer(metricsText, metricsToken)
    await new Promise<void>((resolve, reject) => {
      metricsServer.once('error', reject)
      metricsServer.listen(m.port, m.host, () => { metricsServer.off('error', reject); resolve() })
    })
    closers.push(async () => { await new Promise<void>(resolve => { metricsServer.close(() => resolve()); metricsServer.closeAllConnections() }) })
  }
  const a = server.address() as AddressInfo
  const address = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`
  if (config.listen.port === 0 && advertise.endsWith(':0')) advertise = `${advertise.slice(0, -2)}:${a.port}`
  log.info({
    address,
    data: config.data,
    store: config.store.type,
    state: config.state.type,
    ...(config.l1 !== undefined ? { l1: config.l1.path } : {}),
    ...(redis !== undefined ? { peer: advertise } : {}),
    upstreams: config.upstreams.map(u => ({ name: u.name, url: u.url.origin, prefix: u.prefix, default: u === config.defaultUpstream })),
  }, 'listening')

  const view: LocalView = {
    canonical (name) {
      try { return targets.resolve(name, undefined).name } catch { return undefined }
    },
    async holds (repo, kind, digest) {
      if (await state.links.linked(repo, kind, digest) === undefined) return false
      return kind === 'blob' ? await blobs.has(parseDigest(digest)) : await manifestStore.has(digest)
    },
    async hasBlob (digest) { return await blobs.has(parseDigest(digest)) },
    filling (digest) { return blobs.filling(digest) },
    async openBlob (digest) {
      try {
        const answer = await blobs.serve({ digest: parseDigest(digest), range: undefined, head: false, reach: 'held', route: undefined })
        if (answer.body === undefined || answer.size === undefined) { answer.body?.discard(); return undefined }
        return { size: answer.size, body: answer.body }
      } catch (err) {
        if (err instanceof BlobUnknown) return undefined
        throw err
      }
    },
    async adoptBlob (digest, path, size) {
      const d = parseDigest(digest)
      if (await blobs.has(d)) { await rm(path, { force: true }); return }
      await blobs.adopt(d, path, size)
    },
    async linkBlob (repo, digest) {
      if (!await blobs.has(parseDigest(digest))) return false
      await state.links.link(repo, 'blob', digest)
      return true
    },
    async manifestBody (digest) {
      const m = await manifestStore.get(digest)
      return m === undefined ? undefined : { mediaType: m.mediaType, body: m.body }
    },
    async putManifest (repo, reference, mediaType, body) {
      const target = targets.resolve(parseName(repo), undefined)
      if (target.kind !== 'hosted') throw new Error(`${repo} is not in a hosted namespace of this region`)
      await writes.putManifest(target, parseReference(reference), mediaType, body, false)
    },
    hosted (repo) {
      try { return targets.resolve(parseName(repo), undefined).kind === 'hosted' } catch { return false }
    },
    async tags (repo) { return await state.tags.list(repo) },
    async deleteTag (repo, tag) {
      const target = targets.resolve(parseName(repo), undefined)
      if (target.kind !== 'hosted') throw new Error(`${repo} is not in a hosted namespace of this region`)
      await writes.deleteManifest(target, parseReference(tag), false)
    },
  }
  return {
    address,
    log,
    view,
    async close () {
      // logins waiting for bcrypt are turned away at once: a flood of them must not hold the process
      await closeBcryptPool()
      await new Promise<void>(resolve => {
        server.close(() => resolve())
        server.closeIdleConnections()
        // long transfers get a grace period, then are cut
        setTimeout(() => { server.closeAllConnections(); resolve() }, 10_000).unref()
      })
      for (const close of closers) await close()
      await leases.close()
      await regionPeers?.close()
      await regions?.close()
      await Promise.all(upstreams.map(u => u.close()))
      await opened.close()
      store.close?.()
      audit?.close()
    },
  }
}
