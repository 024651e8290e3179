// Assemble one edge proxy from a region config and run it until a signal.
import cluster from 'node:cluster'
import { mkdir } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { BlobCache } from './cache/blobs.ts'
import type { CacheIndex } from './cache/cache-index.ts'
import { Eviction } from './cache/eviction.ts'
import { LocalCoordinator, type FillCoordinator } from './cache/fill-coordinator.ts'
import { cleanStaging } from './cache/staging.ts'
import { PrimaryLink } from './cluster/worker-side.ts'
import { AggregatorRegistry } from 'prom-client'
import { ListCache } from './cache/lists.ts'
import { ManifestCache } from './cache/manifests.ts'
import type { RegionConfig } from './config/schema.ts'
import { createEdgeServer } from './http/server.ts'
import { createLogger, type Logger } from './observe/logger.ts'
import { Metrics } from './observe/metrics.ts'
import { EmbeddedState } from './store/embedded-state.ts'
import { FsBlobStore } from './store/fs-blob-store.ts'
import { Router } from './upstream/router.ts'
import { Upstream } from './upstream/upstream.ts'

export interface Running {
  readonly address: string
  readonly log: Logger
  close (): Promise<void>
}

/**
 * One edge proxy process. `single`: it owns the whole cache. `worker`: one of
 * several processes sharing the port; fills and the cache index are
 * coordinated by the primary (cluster/primary.ts).
 */
export async function serve (config: RegionConfig, mode: 'single' | 'worker' = 'single'): Promise<Running> {
  const log = createLogger(config.logLevel).child({ region: config.region, ...(mode === 'worker' ? { worker: cluster.worker?.id } : {}) })
  const metrics = new Metrics()
  const staging = join(config.data, 'tmp')
  await mkdir(config.store.path, { recursive: true })
  const store = new FsBlobStore(config.store.path)
  const state = new EmbeddedState(join(config.data, 'state'))
  const upstreams = config.upstreams.map(u => new Upstream(u, log, metrics))
  const fallback = upstreams.find(u => u.config === config.defaultUpstream)
  const router = new Router(upstreams, fallback)
  let index: CacheIndex
  let coordinator: FillCoordinator
  let metricsText: () => Promise<{ text: string, contentType: string }>
  let closeIndex: () => Promise<void>
  await mkdir(staging, { recursive: true })
  if (mode === 'worker') {
    const link = new PrimaryLink()
    // constructing one installs prom-client's listener that answers the primary's metrics requests
    void new AggregatorRegistry()
    AggregatorRegistry.setRegistries([metrics.registry])
    index = link
    coordinator = link
    metricsText = () => link.metrics()
    closeIndex = async () => { link.close() }
  } else {
    await cleanStaging(staging, log)
    const eviction = new Eviction(store, {
      maxBytes: config.cache.maxBytes,
      lowWatermark: 0.95,
      snapshotPath: join(config.data, 'state', 'recency.json'),
      snapshotEveryMs: 30_000,
    }, log, metrics)
    await eviction.init()
    index = eviction
    coordinator = new LocalCoordinator()
    metricsText = async () => ({ text: await metrics.text(), contentType: metrics.registry.contentType })
    closeIndex = () => eviction.close()
  }
  const blobs = new BlobCache({ store, staging, index, coordinator, policy: config.cache, smallBlobMemory: config.cache.smallBlobMemory, log, metrics })
  const manifests = new ManifestCache({ store, state, staging, log, metrics, memoryBytes: config.manifestCacheBytes })
  const lists = new ListCache(state, log, metrics)
  const server = createEdgeServer({ router, blobs, manifests, lists, metrics, metricsText }, log)

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.listen.port, config.listen.host, () => { server.off('error', reject); resolve() })
  })
  const a = server.address() as AddressInfo
  const address = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`
  log.info({
    address,
    data: config.data,
    upstreams: config.upstreams.map(u => ({ name: u.name, url: u.url.origin, prefix: u.prefix, default: u === config.defaultUpstream })),
  }, 'listening')

  return {
    address,
    log,
    async close () {
      await new Promise<void>(resolve => {
        server.close(() => resolve())
        server.closeIdleConnections()
        // long transfers get a grace period, then are cut
        setTimeout(() => { server.closeAllConnections(); resolve() }, 10_000).unref()
      })
      await closeIndex()
      await Promise.all(upstreams.map(u => u.close()))
      await state.close()
    },
  }
}
