// The primary of a multi-process ferry: it forks the workers (which share
// the listening socket), keeps the table of fills so each digest is fetched
// by one worker while the others follow it, owns the one LRU index of the
// cache, and answers /metrics for the whole cluster.
import cluster, { type Worker } from 'node:cluster'
import { join } from 'node:path'
import { AggregatorRegistry } from 'prom-client'
import { Eviction } from '../eviction/eviction.ts'
import type { Claim, FillUpdate } from '../blobs/fill-table.ts'
import { cleanStaging } from '../blobs/staging.ts'
import type { RegionConfig } from '../config/region-config.ts'
import type { Logger } from '../observe/logger.ts'
import { Metrics } from '../observe/metrics.ts'
import { openBlobStore } from '../store/open-store.ts'
import { hostedHoldings } from '../content/hosted-holdings.ts'
import { openState } from '../state/open-state.ts'
import { isFerryMessage, type ToPrimary, type ToWorker } from './messages.ts'

interface Entry {
  readonly owner: number
  readonly path: string
  size: number | undefined
  written: number
  started: boolean
  readonly followers: Set<number>
}

export async function runPrimary (config: RegionConfig, log: Logger): Promise<() => Promise<void>> {
  const metrics = new Metrics({ defaultMetrics: false })
  const store = await openBlobStore(config.store)
  await cleanStaging(join(config.data, 'tmp'), log)
  // read only to learn what pushed content eviction must leave alone
  const state = config.hosted.length > 0 ? await openState(config, log) : undefined
  const eviction = new Eviction(store, {
    maxBytes: config.cache.maxBytes, lowWatermark: 0.95,
    snapshotPath: join(config.data, 'state', 'recency.json'), snapshotEveryMs: 30_000,
    keep: state !== undefined ? hostedHoldings(state.state, config.hosted.map(h => h.prefix)) : undefined,
  }, log, metrics)
  await eviction.init()

  const fills = new Map<string, Entry>()
  const aggregator = new AggregatorRegistry()
  let stopping = false

  const send = (workerId: number, m: ToWorker): void => {
    const worker = cluster.workers?.[workerId]
    // a worker shutting down has closed its channel; with a callback, a failed send is not an 'error' event
    if (worker === undefined || !worker.isConnected()) return
    worker.send(m, (err: Error | null) => { if (err) log.debug({ worker: workerId, err: err.message }, 'message to a worker not delivered') })
  }
  const broadcast = (digest: string, e: Entry, update: FillUpdate): void => {
    for (const w of e.followers) send(w, { ferry: 'update', digest, update })
  }

  const onMessage = (worker: Worker, m: unknown): void => {
    if (!isFerryMessage<ToPrimary>(m)) return
    switch (m.ferry) {
      case 'claim': {
        const e = fills.get(m.digest)
        let claim: Claim
        if (e === undefined) {
          fills.set(m.digest, { owner: worker.id, path: m.path, size: undefined, written: 0, started: false, followers: new Set() })
          claim = { role: 'leader' }
        } else {
          e.followers.add(worker.id)
          claim = { role: 'follower', path: e.path, size: e.size, written: e.written, started: e.started }
        }
        send(worker.id, { ferry: 'claimed', id: m.id, claim })
        return
      }
      case 'progress': {
        const e = fills.get(m.digest)
        if (e === undefined || e.owner !== worker.id) return
        e.size = m.update.size; e.written = m.update.written; e.started = true
        broadcast(m.digest, e, m.update)
        if (m.update.outcome !== undefined) fills.delete(m.digest)
        return
      }
      case 'touch':
        for (const d of m.digests) eviction.touch(d)
        return
      case 'added':
        eviction.added(m.digest, m.size)
        return
      case 'make-room':
        eviction.makeRoom(m.bytes)
        return
      case 'metrics':
        void aggregator.clusterMetrics().then(async text => {
          send(worker.id, { ferry: 'metrics', id: m.id, text: text + '\n' + await metrics.indexRegistry.metrics(), contentType: aggregator.contentType })
        }, (err: Error) => {
          log.warn({ err: err.message }, 'cluster metrics failed')
          send(worker.id, { ferry: 'metrics', id: m.id, text: '', contentType: 'text/plain' })
        })
    }
  }

  const onExit = (worker: Worker, code: number | null, signal: string | null): void => {
    // its fills die with it: whoever followed them must not wait
    for (const [digest, e] of fills) {
      e.followers.delete(worker.id)
      if (e.owner === worker.id) {
        broadcast(digest, e, { size: e.size, written: e.written, outcome: 'failed' })
        fills.delete(digest)
      }
    }
    if (!stopping) {
      log.error({ worker: worker.id, code, signal }, 'worker died; starting another')
      cluster.fork()
    }
  }

  cluster.on('message', onMessage)
  cluster.on('exit', onExit)
  for (let i = 0; i < config.workers; i++) cluster.fork()
  log.info({ workers: config.workers }, 'primary started workers')

  return async () => {
    stopping = true
    const exits = Object.values(cluster.workers ?? {}).map(w => new Promise<void>(resolve => {
      if (w === undefined || w.isDead()) { resolve(); return }
      w.once('exit', () => resolve())
      w.process.kill('SIGTERM')
    }))
    await Promise.all(exits)
    await eviction.close()
    await state?.close()
  }
}
