// Several worker processes sharing one port and one cache: a digest is still
// fetched from the upstream once, whichever workers its clients reach.
import { randomBytes } from 'node:crypto'
import { Agent } from 'node:http'
import t, { type Test } from 'tap'
import { startFerry, type Ferry } from '../helpers/ferry.ts'
import { startFaulty, type Faulty } from '../helpers/faulty.ts'
import { get } from '../helpers/http.ts'
import { blob, pushBlob } from '../helpers/images.ts'
import { pullBlob } from '../helpers/pull.ts'
import { startRegistry, type Registry } from '../helpers/registry.ts'

const MiB = 1024 * 1024

/** The real registry behind a fault proxy, and a ferry of two workers in front, both listening. */
async function twoWorkers (t: Test): Promise<{ upstream: Registry, faulty: Faulty, ferry: Ferry }> {
  const upstream = await startRegistry()
  t.teardown(() => upstream.stop())
  const faulty = await startFaulty(upstream.url)
  t.teardown(() => faulty.close())
  const ferry = await startFerry({ config: { workers: 2, upstreams: [{ name: 'up', url: faulty.url, default: true }] } })
  t.teardown(() => ferry.stop())
  await ferry.proc.waitFor(/"worker":1.*"msg":"listening"/)
  await ferry.proc.waitFor(/"worker":2.*"msg":"listening"/)
  return { upstream, faulty, ferry }
}

t.test('two workers, 16 clients, one cold blob: one upstream GET, every client verifies', async t => {
  const { upstream, faulty, ferry } = await twoWorkers(t)

  for (const size of [32 * MiB, 3 * MiB]) {
    const b = blob('application/octet-stream', randomBytes(size))
    await pushBlob(upstream.url, 'workers/repo', b)
    const path = `/v2/workers/repo/blobs/${b.digest}`
    // slow enough upstream that the 16 requests overlap the fill
    faulty.fault = req => req.url === path ? { bytesPerSecond: 16 * MiB } : undefined
    const pulls = await Promise.all(Array.from({ length: 16 }, () => pullBlob(ferry.url + path, { headers: { connection: 'close' } })))
    for (const p of pulls) {
      t.equal(p.digest, b.digest)
      t.ok(p.complete)
      t.equal(p.declared, size, 'Content-Length given, also to followers in the other worker')
    }
    t.equal(faulty.count('GET', path), 1, `one upstream GET for ${size} bytes`)
    const served = new Set((await ferry.waitForLogs(l => l.msg === 'request' && l.path === path, 16)).map(l => l.worker))
    t.same([...served].sort(), [1, 2], 'both workers served clients')
  }
  faulty.fault = undefined

  const metrics = (await get(`${ferry.url}/metrics`, { connection: 'close' })).body.toString()
  t.match(metrics, /ferry_fill_waiters_coalesced_total \d+/)
  const waiters = Number(/ferry_fill_waiters_coalesced_total (\d+)/.exec(metrics)?.[1])
  t.equal(waiters, 30, 'the cluster-wide count: 15 joined each of the two fills')
  t.match(metrics, /ferry_cache_blobs 2\b/, 'the primary\'s cache index knows both blobs')
})

t.test('a corrupting upstream, two workers, 16 clients: none receives the whole length of the wrong blob, nothing is kept', async t => {
  const { upstream, faulty, ferry } = await twoWorkers(t)
  const size = 8 * MiB
  const b = blob('application/octet-stream', randomBytes(size))
  await pushBlob(upstream.url, 'workers/corrupt', b)
  const path = `/v2/workers/corrupt/blobs/${b.digest}`
  // the wrong byte near the end: followers learn how much is written before they learn the digest failed
  faulty.fault = req => req.url === path ? { bytesPerSecond: 16 * MiB, corruptAt: size - 10 } : undefined
  const pulls = await Promise.all(Array.from({ length: 16 }, () => pullBlob(ferry.url + path, { headers: { connection: 'close' } })))
  faulty.fault = undefined
  const served = new Set((await ferry.waitForLogs(l => l.msg === 'request' && l.path === path, 16)).map(l => l.worker))
  t.same([...served].sort(), [1, 2], 'both workers served clients')
  for (const p of pulls) {
    t.notOk(p.complete, 'the transfer was cut')
    t.ok(p.bytes < size, `never the whole length (${p.bytes} of ${size})`)
  }
  t.equal(faulty.count('GET', path), 1, 'a wrong digest is not fetched again for the same clients')
  const honest = await pullBlob(ferry.url + path, { headers: { connection: 'close' } })
  t.equal(honest.digest, b.digest, 'nothing wrong was kept: the next pull fetches again and verifies')
  t.equal(faulty.count('GET', path), 2)
})

t.test('a worker killed mid-fill: its followers are cut, the worker is replaced, the next pull refills once', async t => {
  const { upstream, faulty, ferry } = await twoWorkers(t)
  const b = blob('application/octet-stream', randomBytes(8 * MiB))
  await pushBlob(upstream.url, 'workers/crash', b)
  const path = `/v2/workers/crash/blobs/${b.digest}`
  faulty.fault = req => req.url === path ? { bytesPerSecond: 2 * MiB } : undefined
  const pulls = Array.from({ length: 6 }, () => pullBlob(ferry.url + path, { headers: { connection: 'close' } }))
  const [started] = await ferry.waitForLogs(l => l.msg === 'blob fill started' && l.digest === b.digest, 1)
  await new Promise(resolve => setTimeout(resolve, 800))
  const followers = ferry.logs().filter(l => l.msg === 'request').length
  t.equal(followers, 0, 'no client has finished yet')
  process.kill(Number(started!.pid), 'SIGKILL') // the worker leading the fill
  const results = await Promise.all(pulls)
  for (const r of results) {
    t.notOk(r.complete, 'cut: those of the dead worker directly, the other worker\'s followers when the primary says the fill failed')
    t.ok(r.bytes < b.bytes.length)
  }
  await ferry.proc.waitFor(/worker died; starting another/)
  faulty.fault = undefined
  const before = faulty.count('GET', path)
  const again = await Promise.all(Array.from({ length: 4 }, () => pullBlob(ferry.url + path, { headers: { connection: 'close' } })))
  for (const r of again) t.equal(r.digest, b.digest)
  t.ok(faulty.count('GET', path) - before <= 1, 'at most one new fill')
})

t.test('SIGTERM after serving: the primary and both workers exit, cleanly and promptly', async t => {
  const { upstream, ferry } = await twoWorkers(t)
  const b = blob('application/octet-stream', randomBytes(64 * 1024))
  await pushBlob(upstream.url, 'workers/stop', b)
  // enough pulls that both workers have served and told the primary of fills and hits
  const pulls = await Promise.all(Array.from({ length: 8 }, () => pullBlob(`${ferry.url}/v2/workers/stop/blobs/${b.digest}`, { headers: { connection: 'close' } })))
  for (const p of pulls) t.equal(p.digest, b.digest)
  const workerPids = [...new Set((await ferry.waitForLogs(l => l.msg === 'listening' && l.worker !== undefined, 2)).map(l => Number(l.pid)))]
  t.equal(workerPids.length, 2)
  const started = Date.now()
  ferry.proc.child.kill('SIGTERM')
  // before the fix, each worker's channel to the primary kept it alive for ever, and the primary with it
  const code = await Promise.race([ferry.proc.exited, new Promise<string>(resolve => setTimeout(() => resolve('still running after 8 s'), 8000))])
  t.equal(code, 0, 'the primary exited with 0')
  t.ok(Date.now() - started < 8000)
  for (const pid of workerPids) t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `worker ${pid} is gone`)
  t.notMatch(ferry.proc.lines.join('\n'), /ERR_IPC_CHANNEL_CLOSED|Unhandled 'error'/, 'no error on the way out')
})
