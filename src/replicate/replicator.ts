// `ferry replicate`: follows the region's event stream and pushes what the
// rules select to each peer region, one loop per peer (peer-loop.ts), and
// keeps the lag metrics. Delivery is at least once; every write is
// content-addressed or idempotent, so a repeat costs a HEAD.
import { setTimeout as sleep } from 'node:timers/promises'
import type { ReplicationConfig } from '../config/region-config.ts'
import type { Logger } from '../observe/logger.ts'
import type { BlobStore } from '../store/blob-store.ts'
import type { RegionState } from '../state/region-state.ts'
import { Edge } from './edge.ts'
import { lagOf } from './lag.ts'
import type { ReplicationMetrics } from './metrics.ts'
import { PeerLoop, type Notify, type ReplicationContext } from './peer-loop.ts'
import { PushClient } from './push-client.ts'
import { Rules } from './rules.ts'

export class Replicator {
  private readonly clients: PushClient[]
  private stopping = false
  private readonly loops: Promise<void>[] = []
  private readonly wake = new AbortController()
  private readonly c: ReplicationContext

  constructor (opts: { state: RegionState, store: BlobStore, config: ReplicationConfig, edge: string, log: Logger, metrics: ReplicationMetrics, notify?: Notify }) {
    this.c = {
      ...(opts.notify !== undefined ? { notify: opts.notify } : {}),
      state: opts.state,
      store: opts.store,
      config: opts.config,
      rules: new Rules(opts.config.rules),
      log: opts.log,
      metrics: opts.metrics,
      edge: new Edge(opts.edge, opts.store),
      stopped: () => this.stopping,
      signal: this.wake.signal,
    }
    this.clients = opts.config.peers.map(p => new PushClient(p))
  }

  start (): void {
    for (const client of this.clients) this.loops.push(new PeerLoop(this.c, client).run())
    const measure = async (): Promise<void> => {
      while (!this.stopping) {
        for (const c of this.clients) {
          const lag = await lagOf(this.c.state, c.peer.name).catch(() => undefined)
          if (lag !== undefined) this.c.metrics.set(c.peer.name, lag)
        }
        await sleep(1000, undefined, { signal: this.wake.signal }).catch(() => {})
      }
    }
    this.loops.push(measure())
  }

  async stop (): Promise<void> {
    this.stopping = true
    this.wake.abort()
    await Promise.all(this.loops)
    await Promise.all(this.clients.map(c => c.close()))
    await this.c.edge.close()
  }

  /** Drop the events every peer has passed (its cursor); true when something went. */
  async compact (): Promise<boolean> {
    const cursors = await Promise.all(this.clients.map(c => this.c.state.events.cursor(c.peer.name)))
    return await this.c.state.events.compact(cursors)
  }

  /** Try every dead letter of every peer once more; those that go through leave the list. */
  async retryDeadLetters (): Promise<{ retried: number, delivered: number }> {
    let retried = 0; let delivered = 0
    for (const client of this.clients) {
      const loop = new PeerLoop(this.c, client)
      for (const letter of await this.c.state.events.deadLetters(client.peer.name)) {
        retried++
        try {
          await loop.deliver(letter.event)
          await this.c.state.events.removeDeadLetter(client.peer.name, letter.id)
          delivered++
        } catch (err) {
          await this.c.state.events.addDeadLetter(client.peer.name, { ...letter, error: (err as Error).message, at: Date.now() })
        }
      }
    }
    return { retried, delivered }
  }
}
