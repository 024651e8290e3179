// Leading a fill in this process: FillFeed picks the source, Fill.run
// resumes and verifies, the commit puts the blob where it belongs; then the
// outcome is logged and counted, and the region lease given back (with a
// "stored" mark when the region's store has it now).
import { statfs } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'
import type { Route } from '../upstream/router.ts'
import type { Committer } from './commit.ts'
import { StoreError } from '../store/errors.ts'
import { FillError } from './errors.ts'
import type { Fill } from './fill.ts'
import { FillFeed, type FeedSources } from './fill-feed.ts'
import type { FillTable } from './fill-table.ts'
import type { BlobSourceName, OpenedBlob } from './source.ts'
import type { MemorySource } from './sources/memory.ts'

export interface Leading {
  readonly feed: FeedSources
  readonly table: FillTable
  readonly committer: Committer
  readonly memory: MemorySource
  readonly policy: { readonly resumeAttempts: number, readonly resumeBackoffMs: number }
  readonly log: Logger
  readonly metrics: Metrics
  /** A write of about `bytes` found this proxy's disk full: counted, and room made. */
  readonly diskFull: (write: 'fill' | 'commit', bytes: number) => void
}

/** Resolves with the source of the first bytes once they flow (the fill runs on); rejects when no source could be had. */
export async function lead (o: Leading, route: Route, fill: Fill, viaStore: boolean): Promise<BlobSourceName | undefined> {
  const digest = fill.digest
  const started = Date.now()
  const upstream = route.upstream.name
  const feed = new FillFeed(o.feed, digest, route, !viaStore)
  const outOfSpace = (size: number): void => {
    o.diskFull('fill', size)
    o.metrics.fillFailures.inc({ reason: 'no_space' })
    o.log.error({ digest: digest.value, upstream, size, path: dirname(fill.tempPath) }, 'the disk is full: blob not cached, the client told 507; evicting cached blobs to make room')
  }
  let first: OpenedBlob
  try {
    first = await feed.open(0)
    if (first.size !== undefined && !await roomFor(dirname(fill.tempPath), first.size)) {
      // known before a byte is written or a header sent: the client gets a 507 now, not a cut transfer later
      first.body.discard()
      outOfSpace(first.size)
      throw new FillError('FILL_NO_SPACE', 'no space left on this proxy\'s disk', { size: first.size })
    }
  } catch (err) {
    // no fill ran: followers in other workers must not wait for one
    o.table.progress(digest.value, { size: undefined, written: 0, outcome: 'failed' })
    await feed.lease?.release()
    throw err
  }
  const { log, metrics, policy } = o
  log.info({ digest: digest.value, upstream, size: first.size, from: feed.label }, 'blob fill started')
  void fill.run(first, {
    reopen: offset => feed.open(offset),
    attempts: policy.resumeAttempts,
    backoffMs: policy.resumeBackoffMs,
    commit: path => o.committer.commit(digest, path, fill.written, { newToRegion: feed.newToRegion, record: true }),
    onBytes: n => { if (feed.from === 'upstream') metrics.upstreamBytes.inc({ upstream }, n) },
    onResume: (offset, err) => {
      metrics.fillResumes.inc()
      log.warn({ digest: digest.value, upstream, from: feed.label, offset, err: (err as Error).message }, `${feed.label} transfer broke; resuming`)
    },
  }).then(() => {
    if (fill.state === 'verified' && fill.outcome === 'failed') {
      if (noSpace(fill.commitError)) o.diskFull('commit', fill.written)
      log.error({ digest: digest.value, upstream, err: (fill.commitError as Error)?.message }, 'blob verified and served, but the store could not keep it')
    } else if (fill.state === 'failed' && noSpace(fill.error)) {
      outOfSpace(fill.size ?? fill.written)
    } else if (fill.state === 'failed') {
      const reason = fill.error instanceof FillError ? fill.error.reason : 'upstream'
      metrics.fillFailures.inc({ reason })
      log.warn({ digest: digest.value, upstream, from: feed.label, reason, err: fill.error?.message, detail: (fill.error as FillError | undefined)?.detail }, 'blob fill failed; nothing cached')
    } else {
      // small: the next hit costs no disk read
      if (fill.bytes !== undefined) o.memory.keep(digest.value, fill.bytes)
      log.info({ digest: digest.value, upstream, from: feed.label, bytes: fill.written, ms: Date.now() - started }, 'blob cached')
    }
  }).finally(() => feed.lease?.release(fill.outcome === 'verified' && feed.newToRegion))
  return feed.from
}

/** The last free space seen per folder: a small blob on a roomy disk is not worth a statfs (a thread-pool round trip) each. */
const lastFree = new Map<string, { at: number, bytes: number }>()
const FREE_FRESH_MS = 1000
const FREE_MARGIN = 256 * 1024 * 1024

async function roomFor (folder: string, bytes: number): Promise<boolean> {
  const seen = lastFree.get(folder)
  if (seen !== undefined && Date.now() - seen.at < FREE_FRESH_MS && seen.bytes - bytes >= FREE_MARGIN) return true
  try {
    const fs = await statfs(folder)
    lastFree.set(folder, { at: Date.now(), bytes: fs.bavail * fs.bsize })
    return fs.bavail * fs.bsize >= bytes
  } catch {
    return true // the write will tell
  }
}

function noSpace (err: unknown): boolean {
  return (err instanceof FillError && err.code === 'FILL_NO_SPACE') || (err instanceof StoreError && err.code === 'STORE_FULL')
}
