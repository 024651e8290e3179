// What `ferry replicate` reports on /metrics: per peer, how far behind it is
// and what went through.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import type { Lag } from './lag.ts'

export class ReplicationMetrics {
  readonly registry = new Registry()
  private readonly lagEvents = new Gauge({ name: 'ferry_replication_lag_events', help: 'Events in the region stream the peer has not been sent yet.', labelNames: ['peer'] as const, registers: [this.registry] })
  private readonly lagBytes = new Gauge({ name: 'ferry_replication_lag_bytes', help: 'Bytes of blobs committed after the peer\'s position.', labelNames: ['peer'] as const, registers: [this.registry] })
  private readonly lagSeconds = new Gauge({ name: 'ferry_replication_lag_seconds', help: 'Age of the oldest event the peer has not been sent (0 when caught up).', labelNames: ['peer'] as const, registers: [this.registry] })
  private readonly dead = new Gauge({ name: 'ferry_replication_dead_letters', help: 'Events the peer refused after every attempt, kept for an operator.', labelNames: ['peer'] as const, registers: [this.registry] })
  private readonly events = new Counter({ name: 'ferry_replication_events_total', help: 'Events delivered to the peer, by kind.', labelNames: ['peer', 'kind'] as const, registers: [this.registry] })
  private readonly failures = new Counter({ name: 'ferry_replication_failures_total', help: 'Delivery attempts that failed and will be retried.', labelNames: ['peer'] as const, registers: [this.registry] })
  private readonly pushed = new Counter({ name: 'ferry_replication_bytes_total', help: 'Blob bytes uploaded to the peer.', labelNames: ['peer'] as const, registers: [this.registry] })

  constructor () { collectDefaultMetrics({ register: this.registry, prefix: 'ferry_replicator_' }) }

  set (peer: string, lag: Lag): void {
    this.lagEvents.set({ peer }, lag.events)
    this.lagBytes.set({ peer }, lag.bytes)
    this.lagSeconds.set({ peer }, (lag.oldestMs ?? 0) / 1000)
    this.dead.set({ peer }, lag.deadLetters)
  }

  delivered (peer: string, kind: string): void { this.events.inc({ peer, kind }) }
  failed (peer: string): void { this.failures.inc({ peer }) }
  deadLettered (peer: string): void { this.dead.inc({ peer }) }
  bytes (peer: string, n: number): void { if (n > 0) this.pushed.inc({ peer }, n) }
}
