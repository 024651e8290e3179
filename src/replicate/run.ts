// `ferry replicate`: the replicator as a process, its /metrics, and the
// operator's views of it (--status, --dead-letters, --retry-dead).
import { createServer } from 'node:http'
import type { RegionConfig } from '../config/region-config.ts'
import type { Logger } from '../observe/logger.ts'
import { openBlobStore } from '../store/open-store.ts'
import { openState } from '../state/open-state.ts'
import type { RegionState } from '../state/region-state.ts'
import { ReplicationMetrics } from './metrics.ts'
import { lagOf } from './lag.ts'
import { Replicator } from './replicator.ts'

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
  const replicator = new Replicator({ state: opened.state, store, config: config.replication, edge: edgeOf(config), log, metrics })
  const done = async (): Promise<void> => { await replicator.stop(); store.close?.(); await opened.close() }

  if (mode !== 'run') {
    try {
      return await view(mode, config, opened.state, replicator, print)
    } finally {
      await done()
    }
  }

  replicator.start()
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
  log.info({ peers: config.replication.peers.map(p => ({ name: p.name, url: p.url.origin })), edge: edgeOf(config), metrics: listen === undefined ? undefined : `${listen.host}:${listen.port}` }, 'replicating')
  return async () => {
    server?.close()
    await done()
  }
}
