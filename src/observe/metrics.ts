import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export class Metrics {
  readonly registry = new Registry()
  /** The cache index's metrics: exposed by whoever owns the index (the primary, with workers). */
  readonly indexRegistry = new Registry()

  async text (): Promise<string> {
    return (await this.registry.metrics()) + (await this.indexRegistry.metrics())
  }

  readonly requests = new Histogram({
    name: 'ferry_http_request_duration_seconds',
    help: 'Client requests by route, method and status, with their duration (to the end of the response).',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
    registers: [this.registry],
  })

  readonly cache = new Counter({
    name: 'ferry_cache_lookups_total',
    help: 'Cache lookups by kind (blob, manifest, tag) and result (hit, miss, stale, revalidated).',
    labelNames: ['kind', 'result'] as const,
    registers: [this.registry],
  })

  readonly bytesServed = new Counter({
    name: 'ferry_bytes_served_total',
    help: 'Blob bytes sent to clients, by source (cache, fill).',
    labelNames: ['source'] as const,
    registers: [this.registry],
  })

  readonly upstreamRequests = new Histogram({
    name: 'ferry_upstream_request_duration_seconds',
    help: 'Requests to upstream registries until response headers, by upstream, kind and outcome.',
    labelNames: ['upstream', 'kind', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry],
  })

  readonly upstreamBytes = new Counter({
    name: 'ferry_upstream_bytes_total',
    help: 'Blob bytes received from upstream registries.',
    labelNames: ['upstream'] as const,
    registers: [this.registry],
  })

  readonly fillsInFlight = new Gauge({
    name: 'ferry_fills_in_flight',
    help: 'Blob fills from an upstream currently running.',
    registers: [this.registry],
  })

  readonly fillWaiters = new Counter({
    name: 'ferry_fill_waiters_coalesced_total',
    help: 'Client requests that joined a fill already running instead of starting their own.',
    registers: [this.registry],
  })

  readonly fillFailures = new Counter({
    name: 'ferry_fill_failures_total',
    help: 'Blob fills that failed, by reason (digest_mismatch, size_mismatch, upstream, no_space, staging_failed).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  })

  readonly diskFull = new Counter({
    name: 'ferry_disk_full_total',
    help: 'Writes refused because this proxy\'s disk was full, by what was written (fill, commit, upload); each sets off an eviction.',
    labelNames: ['write'] as const,
    registers: [this.registry],
  })

  readonly fillResumes = new Counter({
    name: 'ferry_fill_resumes_total',
    help: 'Upstream transfers resumed with a Range request after a drop or a stall.',
    registers: [this.registry],
  })

  readonly evictions = new Counter({
    name: 'ferry_cache_evictions_total',
    help: 'Blobs evicted from the cache to stay under its byte limit.',
    registers: [this.indexRegistry],
  })

  readonly evictedBytes = new Counter({
    name: 'ferry_cache_evicted_bytes_total',
    help: 'Bytes evicted from the cache.',
    registers: [this.indexRegistry],
  })

  readonly cacheBytes = new Gauge({
    name: 'ferry_cache_bytes',
    help: 'Bytes of blobs in the cache.',
    registers: [this.indexRegistry],
  })

  readonly cacheBlobs = new Gauge({
    name: 'ferry_cache_blobs',
    help: 'Blobs in the cache.',
    registers: [this.indexRegistry],
  })

  readonly fillSources = new Counter({
    name: 'ferry_fill_sources_total',
    help: 'Where fills read their bytes from: upstream, store (the region\'s L2 into this proxy\'s L1) or peer (a fill led by another proxy).',
    labelNames: ['source'] as const,
    registers: [this.registry],
  })

  readonly namespaceBytes = new Gauge({
    name: 'ferry_namespace_usage_bytes',
    help: 'Bytes a hosted namespace\'s repositories hold (each blob once, and their manifests), as last computed for a quota.',
    labelNames: ['namespace'] as const,
    registers: [this.registry],
  })

  readonly passwordChecks = new Counter({
    name: 'ferry_auth_password_checks_total',
    help: 'Password (bcrypt) comparisons run, off the event loop; remembered and concurrent identical credentials are checked once.',
    registers: [this.registry],
  })

  readonly loginsRefused = new Counter({
    name: 'ferry_auth_logins_refused_total',
    help: 'Logins refused before any check, by reason (throttled: the login limits; busy: too many checks waiting).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  })

  readonly gcRuns = new Counter({
    name: 'ferry_gc_runs_total',
    help: 'Garbage collections of hosted repositories this process ran.',
    registers: [this.registry],
  })

  readonly gcRemoved = new Counter({
    name: 'ferry_gc_removed_total',
    help: 'What garbage collection removed: links taken from repositories (unlinked) and objects deleted from the store (deleted), by kind (blob, manifest).',
    labelNames: ['what', 'kind'] as const,
    registers: [this.registry],
  })

  readonly gcRemovedBytes = new Counter({
    name: 'ferry_gc_removed_bytes_total',
    help: 'Bytes garbage collection deleted from the store.',
    registers: [this.registry],
  })

  readonly leaseFallbacks = new Counter({
    name: 'ferry_fill_lease_fallbacks_total',
    help: 'Fills started without a region lease because Redis was unreachable (coalescing per proxy only).',
    registers: [this.registry],
  })

  readonly rateLimitRemaining = new Gauge({
    name: 'ferry_upstream_ratelimit_remaining',
    help: 'Requests left in the upstream\'s rate-limit window, as it last reported (RateLimit-Remaining).',
    labelNames: ['upstream'] as const,
    registers: [this.registry],
  })

  readonly rateLimitReset = new Gauge({
    name: 'ferry_upstream_ratelimit_reset_seconds',
    help: 'Seconds until the upstream takes requests again, from its last 429\'s Retry-After (0 while it answers).',
    labelNames: ['upstream'] as const,
    registers: [this.registry],
  })

  readonly rateLimitLimit = new Gauge({
    name: 'ferry_upstream_ratelimit_limit',
    help: 'The upstream\'s rate limit per window, as it last reported (RateLimit-Limit).',
    labelNames: ['upstream'] as const,
    registers: [this.registry],
  })

  readonly repositoryListings = new Counter({
    name: 'ferry_repository_listings_total',
    help: 'Walks of the region state\'s repository list for the catalog and the console (callers that ask at once share one).',
    registers: [this.registry],
  })

  private memoryTierOf: (() => { blobs: number, manifests: number }) | undefined

  /** What the in-memory tiers hold, read at each scrape (see watchMemoryTier). */
  readonly memoryTier = new Gauge({
    name: 'ferry_memory_tier_bytes',
    help: 'Bytes held in memory by the small-blob tier (cache.smallBlobMemory) and the manifest tier (cache.manifestMemory).',
    labelNames: ['tier'] as const,
    registers: [this.registry],
    collect: () => {
      const held = this.memoryTierOf?.()
      if (held === undefined) return
      this.memoryTier.set({ tier: 'blobs' }, held.blobs)
      this.memoryTier.set({ tier: 'manifests' }, held.manifests)
    },
  })

  watchMemoryTier (held: () => { blobs: number, manifests: number }): void { this.memoryTierOf = held }

  /** The local disk tier (l1) in front of a shared store, kept apart from the region store's figures. */
  readonly l1 = {
    cacheBytes: new Gauge({ name: 'ferry_l1_bytes', help: 'Bytes of blobs in this proxy\'s local disk tier.', registers: [this.registry] }),
    cacheBlobs: new Gauge({ name: 'ferry_l1_blobs', help: 'Blobs in this proxy\'s local disk tier.', registers: [this.registry] }),
    evictions: new Counter({ name: 'ferry_l1_evictions_total', help: 'Blobs evicted from the local disk tier.', registers: [this.registry] }),
    evictedBytes: new Counter({ name: 'ferry_l1_evicted_bytes_total', help: 'Bytes evicted from the local disk tier.', registers: [this.registry] }),
  }

  constructor (opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'ferry_' })
  }
}
