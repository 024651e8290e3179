// `ferry replicate`: the replicator as a process, its /metrics, and the
// operator's views of it (--status, --dead-letters, --retry-dead).
import { createServer } from 'node:http'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { RegionConfig } from '../config/region-config.ts'
import type { Logger } from '../observe/logger.ts'
import { openBlobStore } from '../store/open-store.ts'
import { openState } from '../state/open-state.ts'
import type { RegionState } from '../state/region-state.ts'
import { ReplicationMetrics } from './metrics.ts'
import { lagOf } from './lag.ts'
import { FileReplicatorLease, RedisReplicatorLease, type ReplicatorLease } from './lease.ts'
import { Replicator } from './replicator.ts'
import { Webhooks } from '../observe/webhooks.ts'
import { deadLettersOf } from '../observe/webhook-dead-letters.ts'

export type ReplicateMode = 'run' | 'status' | 'dead-letters' | 'retry-dead'

/** The region's edge as the replicator reaches it: replication.edge, else the listen address. */
function edgeOf (config: RegionConfig): string {
  if (config.replication.edge !== undefined) return config.replication.edge
  const { host, port } = config.listen
  const local = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host
  return `http://${local}:${port}`
}

const VIEW_WAITS_FOR_STATE_MS = 5000
const RUN_WAITS_FOR_STATE_MS = 30_000

async function view (mode: Exclude<ReplicateMode, 'run'>, config: RegionConfig, state: RegionState, replicator: Replicator, print: (line: string) => void): Promise<number> {
  if (mode === 'status') {
    for (const p of config.replication.peers) {
      const lag = await lagOf(state, p.name)
      print(JSON.stringify({ peer: p.name, url: p.url.origin, eventsBehind: lag.events, bytesBehind: lag.bytes, oldestPendingSeconds: lag.oldestMs === undefined ? 0 : Math.round(lag.oldestMs / 100) / 10, deadLetters: lag.deadLetters, position: lag.cursor }))
    }
    return 0
  }
  if (mode === 'dead-letters') {
    for (const p of config.replication.peers) {
      for (const d of await state.events.deadLetters(p.name)) print(JSON.stringify({ peer: p.name, ...d }))
    }
    return 0
  }
  const r = await replicator.retryDeadLetters()
  print(JSON.stringify(r))
  return r.delivered === r.retried ? 0 : 1
}

export async function replicate (config: RegionConfig, mode: ReplicateMode, log: Logger, print: (line: string) => void): Promise<(() => Promise<void>) | number> {
  if (config.replication.peers.length === 0) {
    print(`${config.file}: replication.peers is empty: nothing to replicate to`)
    return 1
  }
  // a view answers from the state or says it cannot; the replicator waits a while for it, then says so too
  const opened = await openState(config, log, { readyWithinMs: mode === 'run' ? RUN_WAITS_FOR_STATE_MS : VIEW_WAITS_FOR_STATE_MS })
  const store = await openBlobStore(config.store)
  const metrics = new ReplicationMetrics()
  const done = async (): Promise<void> => { store.close?.(); await opened.close() }

  if (mode !== 'run') {
    const replicator = new Replicator({ state: opened.state, store, config: config.replication, edge: edgeOf(config), log, metrics })
    try {
      return await view(mode, config, opened.state, replicator, print)
    } finally {
      await replicator.stop()
      await done()
    }
  }

  let server: ReturnType<typeof createServer> | undefined
  const listen = config.replication.metricsListen
  if (listen !== undefined) {
    server = createServer((req, res) => {
      if (req.url !== '/metrics') { res.writeHead(404).end(); return }
      metrics.registry.metrics().then(text => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text)
      }, () => res.writeHead(500).end())
    })
    await new Promise<void>(resolve => server!.listen(listen.port, listen.host, resolve))
  }
  const lease = opened.redis !== undefined && config.state.type === 'redis'
    ? new RedisReplicatorLease(opened.redis, config.state.keyPrefix)
    : new FileReplicatorLease(join(config.data, 'state', 'replicator.lock'))
  const stopping = new AbortController()
  const webhooks = config.webhooks.length === 0
    ? undefined
    : new Webhooks({
      hooks: config.webhooks,
      source: `ferry/${config.region}/replicator`,
      deadLetters: deadLettersOf(config, opened.redis),
      log: log.child({ part: 'webhooks' }),
    })
  const notify = webhooks === undefined ? undefined : (type: 'replicated' | 'replication.failed', subject: string, data: Record<string, unknown>): void => { webhooks.emit(type, subject, data) }
  const supervising = supervise(lease, stopping.signal, log, () => new Replicator({ state: opened.state, store, config: config.replication, edge: edgeOf(config), log, metrics, ...(notify !== undefined ? { notify } : {}) }), () => {
    log.info({ peers: config.replication.peers.map(p => ({ name: p.name, url: p.url.origin })), edge: edgeOf(config), metrics: listen === undefined ? undefined : `${listen.host}:${listen.port}` }, 'replicating')
  })
  return async () => {
    stopping.abort()
    await supervising
    server?.close()
    await webhooks?.close()
    await done()
  }
}

/**
 * Replicate while this process holds the region's lease; stand by while
 * another does. Between renewals the event log is compacted up to where
 * every peer has passed.
 */
async function supervise (lease: ReplicatorLease, signal: AbortSignal, log: Logger, make: () => Replicator, onStart: () => void): Promise<void> {
  const pause = (ms: number): Promise<void> => sleep(ms, undefined, { signal }).catch(() => {})
  let standingBy = false
  while (!signal.aborted) {
    let got = false
    try { got = await lease.tryAcquire() } catch (err) { log.warn({ err: (err as Error).message }, 'replicator lease: the region state did not answer; trying again') }
    if (!got) {
      if (!standingBy) log.info({ holder: await lease.holder().catch(() => undefined) }, 'another replicator holds this region\'s lease; standing by')
      standingBy = true
      await pause(lease.renewEveryMs)
      continue
    }
    standingBy = false
    const replicator = make()
    replicator.start()
    onStart()
    let renewed = Date.now()
    while (!signal.aborted) {
      await pause(lease.renewEveryMs)
      if (signal.aborted) break
      const ours = await lease.renew().then(ok => ok ? 'yes' : 'no', () => 'unknown')
      if (ours === 'yes') renewed = Date.now()
      // not renewed for three periods (the state is down): another replicator may hold it by now
      if (ours === 'no' || Date.now() - renewed > 3 * lease.renewEveryMs) {
        log.error('replicator lease lost; stopping deliveries and standing by')
        break
      }
      await replicator.compact().catch((err: unknown) => { log.warn({ err: (err as Error).message }, 'event log compaction failed') })
    }
    await replicator.stop()
    if (signal.aborted) await replicator.compact().catch(() => {})
    await lease.release().catch(() => {})
  }
}
