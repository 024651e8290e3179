// The recency snapshot is written in slices while ferry keeps serving: hits
// that move blobs during the walk must not lose or corrupt anything, and
// what a restart reads back must end with the blobs used last.
import { readFileSync, statSync } from 'node:fs'

import { join } from 'node:path'
import { pino } from 'pino'
import t from 'tap'
import { Eviction } from '../../src/eviction/eviction.ts'
import { Metrics } from '../../src/observe/metrics.ts'
import { FsBlobStore } from '../../src/store/fs-blob-store.ts'
import { scratchDir } from '../helpers/procs.ts'

const digest = (i: number): string => `sha256:${i.toString(16).padStart(64, '0')}`

t.test('a snapshot of 50,000 blobs, with hits during the walk: every blob once after loading, the hit ones newest', async t => {
  const dir = scratchDir('ferry-snapshot-')
  const snapshotPath = join(dir, 'state', 'recency.json')
  const e = new Eviction(new FsBlobStore(join(dir, 'blobs')), { maxBytes: 1e15, lowWatermark: 0.95, snapshotPath, snapshotEveryMs: 1e9 }, pino({ level: 'silent' }), new Metrics({ defaultMetrics: false }))
  const count = 50_000
  for (let i = 0; i < count; i++) e.added(digest(i), i + 1)
  const hot = [0, 1, 2, 3, 4, 5000, 5001, 49_999].map(digest)

  const writing = e.persist()
  // hits once the first slice is on disk: the walk has passed the oldest blobs and is not done
  const tmp = `${snapshotPath}.${process.pid}.tmp`
  const size = (): number => { try { return statSync(tmp).size } catch { return 0 } }
  while (size() === 0) await new Promise(resolve => setImmediate(resolve))
  for (const d of hot) e.touch(d)
  await writing

  const raw = JSON.parse(readFileSync(snapshotPath, 'utf8')) as [string, number][]
  t.ok(Array.isArray(raw) && raw.every(x => Array.isArray(x) && typeof x[0] === 'string' && typeof x[1] === 'number'), 'valid JSON: [digest, size] pairs')
  // as the loader does: a later place wins
  const order = new Map<string, number>()
  for (const [d, size] of raw) { order.delete(d); order.set(d, size) }
  t.equal(order.size, count, 'every blob is in it')
  t.ok(raw.length > count, `hits moved blobs while the walk ran (${raw.length - count} written twice)`)
  t.ok([...order].every(([d, size]) => size === Number.parseInt(d.slice(7), 16) + 1), 'with its size')
  const newest = new Set([...order.keys()].slice(-hot.length))
  t.same([...newest].sort(), [...hot].sort(), 'the blobs hit last are the newest')

  await e.close()
  const again = JSON.parse(readFileSync(snapshotPath, 'utf8')) as [string, number][]
  t.equal(new Set(again.map(x => x[0])).size, count, 'close writes a whole snapshot too')
})

t.test('in a small cache, a blob hit again within the same second is the newest: blobs added meanwhile go before it', async t => {
  const dir = scratchDir('ferry-order-')
  const e = new Eviction(new FsBlobStore(join(dir, 'blobs')), { maxBytes: 1e15, lowWatermark: 0.95, snapshotPath: join(dir, 'state', 'recency.json'), snapshotEveryMs: 1e9 }, pino({ level: 'silent' }), new Metrics({ defaultMetrics: false }))
  for (let i = 0; i < 9; i++) e.added(digest(i), 10)
  const hot = digest(0)
  e.touch(hot)
  for (let i = 100; i < 103; i++) e.added(digest(i), 10) // three fills commit in the same second
  e.touch(hot)
  await e.close()
  const order = (JSON.parse(readFileSync(join(dir, 'state', 'recency.json'), 'utf8')) as [string, number][]).map(x => x[0])
  t.equal(order[order.length - 1], hot, 'the blob used last is the last to go')
})
