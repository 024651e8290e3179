// Assemble one edge proxy from a region config and run it until a signal.
import { mkdir } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { BlobCache } from './cache/blobs.ts'
import { Eviction } from './cache/eviction.ts'
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

export async function serve (config: RegionConfig): Promise<Running> {
  const log = createLogger(config.logLevel).child({ region: config.region })
  const metrics = new Metrics()
  const staging = join(config.data, 'tmp')
  await mkdir(config.store.path, { recursive: true })
  const store = new FsBlobStore(config.store.path)
  const state = new EmbeddedState(join(config.data, 'state'))
  const upstreams = config.upstreams.map(u => new Upstream(u, log, metrics))
  const fallback = upstreams.find(u => u.config === config.defaultUpstream)
  const router = new Router(upstreams, fallback)
  const eviction = new Eviction(store, {
    maxBytes: config.cache.maxBytes,
    lowWatermark: 0.95,
    snapshotPath: join(config.data, 'state', 'recency.json'),
    snapshotEveryMs: 30_000,
  }, log, metrics)
  await eviction.init()
  const blobs = new BlobCache({ store, staging, eviction, policy: config.cache, log, metrics })
  await blobs.init()
  const manifests = new ManifestCache({ store, state, staging, log, metrics, memoryBytes: config.manifestCacheBytes })
  const lists = new ListCache(state, log, metrics)
  const server = createEdgeServer({ router, blobs, manifests, lists, metrics }, log)

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
      await eviction.close()
      await Promise.all(upstreams.map(u => u.close()))
      await state.close()
    },
  }
}
