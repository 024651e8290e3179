// Garbage collection every `gc.interval`, on one proxy of a region at a time:
// the one that takes the `gc` lease in Redis (held for the interval, so the
// next run is the next interval's, wherever it happens); with the embedded
// state, the one process that serves (or the first worker).
import type { Redis } from 'ioredis'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'
import type { Collector, GcMetrics, GcReport } from './gc.ts'

export function gcMetrics (metrics: Metrics): GcMetrics {
  return {
    run (report: GcReport) {
      metrics.gcRuns.inc()
      for (const u of report.unlinked) metrics.gcRemoved.inc({ what: 'unlinked', kind: u.kind })
      for (const d of report.deleted) metrics.gcRemoved.inc({ what: 'deleted', kind: d.kind })
      metrics.gcRemovedBytes.inc(report.bytes)
    },
  }
}

export function scheduleGc (opts: { collector: Collector, intervalMs: number, redis: Redis | undefined, prefix: string, owner: string, log: Logger }): () => void {
  let running: Promise<unknown> | undefined
  const tick = (): void => {
    if (running !== undefined) return
    running = (async () => {
      if (opts.redis !== undefined) {
        const won = await opts.redis.set(`${opts.prefix}gc`, opts.owner, 'PX', Math.max(1000, opts.intervalMs - 100), 'NX').catch(() => null)
        if (won !== 'OK') return
      }
      await opts.collector.run()
    })().catch((err: unknown) => {
      opts.log.warn({ err: (err as Error).message }, 'garbage collection failed; it runs again next interval')
    }).finally(() => { running = undefined })
  }
  const timer = setInterval(tick, opts.intervalMs)
  timer.unref()
  return () => clearInterval(timer)
}
