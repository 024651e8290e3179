// The cache on disk: what survives kill -9 in the middle of a fill, and the
// byte limit with least-recently-used eviction while serving.
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { startFerry } from '../helpers/ferry.ts'
import { startFaulty } from '../helpers/faulty.ts'
import { blob, pushBlob, type Blob } from '../helpers/images.ts'
import { pullBlob } from '../helpers/pull.ts'
import { startRegistry } from '../helpers/registry.ts'
import { eventually } from '../helpers/procs.ts'

const MiB = 1024 * 1024

function cachedIn (data: string, b: Blob): boolean {
  return existsSync(join(data, 'blobs', 'sha256', b.digest.slice(7, 9), b.digest.slice(7)))
}

function storeBytes (data: string): number {
  let total = 0
  const root = join(data, 'blobs', 'sha256')
  if (!existsSync(root)) return 0
  for (const p of readdirSync(root)) for (const f of readdirSync(join(root, p))) total += statSync(join(root, p, f)).size
  return total
}

t.test('kill -9 in the middle of a fill: after restart no partial blob is served, strays are removed, one new fill', async t => {
  const upstream = await startRegistry()
  t.teardown(() => upstream.stop())
  const faulty = await startFaulty(upstream.url)
  t.teardown(() => faulty.close())
  const b = blob('application/octet-stream', randomBytes(8 * MiB))
  await pushBlob(upstream.url, 'crash/repo', b)
  const path = `/v2/crash/repo/blobs/${b.digest}`
  faulty.fault = req => req.url === path ? { bytesPerSecond: 2 * MiB } : undefined
  const config = { upstreams: [{ name: 'up', url: faulty.url, default: true }] }
  const first = await startFerry({ config })
  t.teardown(() => first.kill())

  const pulling = pullBlob(first.url + path)
  await sleep(1000)
  const staged = readdirSync(join(first.data, 'tmp'))
  t.equal(staged.length, 1, 'a staging file is being written')
  await first.kill()
  const cut = await pulling
  t.notOk(cut.complete, 'the client of the killed process saw a cut transfer')
  t.notOk(cachedIn(first.data, b), 'nothing was committed')

  faulty.fault = undefined
  const second = await startFerry({ config, data: first.data })
  t.teardown(() => second.stop())
  t.same(readdirSync(join(second.data, 'tmp')), [], 'the stray staging file is gone')
  const getsBefore = faulty.count('GET', path)
  const p = await pullBlob(second.url + path)
  t.equal(p.digest, b.digest, 'correct bytes')
  t.ok(p.complete)
  t.equal(faulty.count('GET', path) - getsBefore, 1, 'one new fill')
  t.ok(await eventually(() => cachedIn(second.data, b)))
})

t.test('a 100 MiB limit with 300 MiB pulled: the cache stays under it, recently used blobs survive, a restart keeps the order', async t => {
  const upstream = await startRegistry()
  t.teardown(() => upstream.stop())
  const blobs: Blob[] = []
  for (let i = 0; i < 30; i++) {
    const b = blob('application/octet-stream', randomBytes(10 * MiB))
    await pushBlob(upstream.url, 'lru/repo', b)
    blobs.push(b)
  }
  const limit = 100 * MiB
  const config = { upstreams: [{ name: 'up', url: upstream.url, default: true }], cache: { maxBytes: limit } }
  const ferry = await startFerry({ config })
  const url = (b: Blob): string => `${ferry.url}/v2/lru/repo/blobs/${b.digest}`
  const hot = blobs[0]!
  let peak = 0
  for (const [i, b] of blobs.entries()) {
    const p = await pullBlob(url(b))
    t.equal(p.digest, b.digest, `blob ${i}`)
    // the hot blob is used again and again while the others stream past it
    t.equal((await pullBlob(url(hot))).digest, hot.digest)
    await sleep(20)
    peak = Math.max(peak, storeBytes(ferry.data))
  }
  await eventually(() => cachedIn(ferry.data, blobs[blobs.length - 1]!))
  await sleep(200)
  const onDisk = storeBytes(ferry.data)
  t.ok(onDisk <= limit, `the cache holds ${onDisk} bytes, under ${limit}`)
  t.ok(peak <= limit + 10 * MiB, `never more than one blob over the limit (peak ${peak})`)
  t.ok(cachedIn(ferry.data, hot), 'the hot blob survived')
  for (const b of blobs.slice(-5)) t.ok(cachedIn(ferry.data, b), 'a recent blob survived')
  for (const b of blobs.slice(1, 10)) t.notOk(cachedIn(ferry.data, b), 'an old blob was evicted')
  const evicted = (await ferry.waitForLogs(l => l.msg === 'evicted least recently used blobs', 1)).length
  t.ok(evicted > 0, 'eviction ran while serving')

  // an evicted blob is fetched again on demand
  const getsBefore = upstream.count('GET', `/blobs/${blobs[1]!.digest}`)
  t.equal((await pullBlob(url(blobs[1]!))).digest, blobs[1]!.digest)
  t.equal(upstream.count('GET', `/blobs/${blobs[1]!.digest}`), getsBefore + 1)

  // restart: the hot blob was used most recently, so it outlives the next wave
  t.equal((await pullBlob(url(hot))).digest, hot.digest)
  await ferry.stop()
  const again = await startFerry({ config, data: ferry.data })
  t.teardown(() => again.stop())
  for (const b of blobs.slice(10, 16)) t.equal((await pullBlob(`${again.url}/v2/lru/repo/blobs/${b.digest}`)).digest, b.digest)
  await sleep(200)
  t.ok(cachedIn(again.data, hot), 'after a restart and more pulls, the most recently used blob is still cached')
  t.ok(storeBytes(again.data) <= limit)
})
