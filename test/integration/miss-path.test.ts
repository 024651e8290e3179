// The miss path against an upstream that misbehaves on purpose: for every
// fault, what each client received, how often the upstream was asked, and
// what the cache holds afterwards.
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { startFerry, type Ferry } from '../helpers/ferry.ts'
import { startFaulty, type Faulty } from '../helpers/faulty.ts'
import { get } from '../helpers/http.ts'
import { blob, pushBlob, type Blob } from '../helpers/images.ts'
import { pullBlob, type Pulled } from '../helpers/pull.ts'
import { startRegistry, type Registry } from '../helpers/registry.ts'
import { eventually } from '../helpers/procs.ts'

const MiB = 1024 * 1024
let upstream: Registry
let faulty: Faulty
let ferry: Ferry

t.before(async () => {
  upstream = await startRegistry()
  faulty = await startFaulty(upstream.url)
  ferry = await startFerry({ config: {
    upstreams: [{ name: 'up', url: faulty.url, default: true, timeouts: { bodyIdle: '500ms' } }],
    cache: { resumeAttempts: 3, resumeBackoff: '50ms' },
  } })
})
t.teardown(async () => { await ferry?.stop(); await faulty?.close(); await upstream?.stop() })

async function newBlob (size: number): Promise<Blob> {
  const b = blob('application/octet-stream', randomBytes(size))
  await pushBlob(upstream.url, 'faults/repo', b)
  return b
}

function cached (b: Blob): boolean {
  return existsSync(join(ferry.data, 'blobs', 'sha256', b.digest.slice(7, 9), b.digest.slice(7)))
}

function stagingFiles (): string[] {
  return readdirSync(join(ferry.data, 'tmp')).filter(f => !f.startsWith('m-'))
}

async function settle (): Promise<void> {
  // a failed fill removes its staging file right after the clients see the cut
  for (let i = 0; i < 50 && stagingFiles().length > 0; i++) await new Promise(r => setTimeout(r, 20))
}

/** A whole 502 saying the digest did not match: what a client gets that asks once the fill has failed. */
function mismatchTold (p: Pulled): boolean {
  return p.status === 502 && p.complete && (JSON.parse(p.body ?? '{}') as { errors?: { detail?: { reason?: string } }[] }).errors?.[0]?.detail?.reason === 'digest_mismatch'
}

const url = (b: Blob): string => `${ferry.url}/v2/faults/repo/blobs/${b.digest}`
const blobPath = (b: Blob): string => `/v2/faults/repo/blobs/${b.digest}`

async function metric (name: string): Promise<number> {
  const text = (await get(`${ferry.url}/metrics`)).body.toString()
  let sum = 0
  for (const line of text.split('\n')) if (line.startsWith(name + ' ') || line.startsWith(name + '{')) sum += Number(line.split(' ').pop())
  return sum
}

t.test('wrong bytes: every client gets a cut transfer, never the whole wrong blob, and nothing is cached', async t => {
  const b = await newBlob(4 * MiB)
  faulty.fault = req => req.url === blobPath(b) ? { corruptAt: 3 * MiB } : undefined
  const mismatches = await metric('ferry_fill_failures_total')
  const pulls = await Promise.all([1, 2, 3, 4].map(() => pullBlob(url(b))))
  for (const p of pulls) {
    if (mismatchTold(p)) { t.pass('came after the fill failed: told the digest did not match'); continue }
    t.equal(p.status, 200)
    t.notOk(p.complete, 'the transfer is cut')
    t.ok(p.bytes < b.bytes.length, `fewer bytes than the blob (${p.bytes})`)
    t.not(p.digest, b.digest)
  }
  t.ok(pulls.some(p => !mismatchTold(p)), 'the clients were served from the fill while it ran')
  t.equal(faulty.count('GET', blobPath(b)), 1, 'one upstream GET for four clients, and a mismatch is not retried')
  await settle()
  t.notOk(cached(b), 'not in the cache')
  t.same(stagingFiles(), [], 'no staging file left')
  t.equal(await metric('ferry_fill_failures_total'), mismatches + 1, 'counted')
  t.equal((await ferry.waitForLogs(l => l.msg === 'blob fill failed; nothing cached' && l.reason === 'digest_mismatch' && l.digest === b.digest, 1)).length, 1, 'logged')

  faulty.fault = undefined
  const good = await pullBlob(url(b))
  t.equal(good.digest, b.digest, 'a later pull from an honest upstream gets the right bytes')
  t.ok(await eventually(() => cached(b)), 'committed to the cache (after the clients had their bytes)')
})

t.test('small blobs, held in memory while they fill: wrong bytes are cut and not kept, a drop resumes, a Range gets its slice', async t => {
  const bad = await newBlob(64 * 1024)
  faulty.fault = req => req.url === blobPath(bad) ? { corruptAt: 40_000 } : undefined
  const cut = await Promise.all([1, 2, 3].map(() => pullBlob(url(bad))))
  for (const p of cut) {
    // a client that comes once the fill has failed (a 64 KiB fill can fail before a loaded machine reads the
    // other requests) is told so in a whole answer; no one gets the blob, whole or cut short
    t.ok(!p.complete || mismatchTold(p), `the transfer is cut, or the answer says the digest did not match (${p.status}, ${p.bytes} bytes${p.body !== undefined ? `: ${p.body}` : ''})`)
    t.not(p.digest, bad.digest)
  }
  await settle()
  t.notOk(cached(bad), 'not in the cache')
  faulty.fault = undefined
  const before = faulty.count('GET', blobPath(bad))
  t.equal((await pullBlob(url(bad))).digest, bad.digest, 'an honest upstream later: the right bytes')
  t.equal(faulty.count('GET', blobPath(bad)), before + 1, 'fetched again: the wrong bytes were not kept, in memory or on disk')

  const dropped = await newBlob(64 * 1024)
  let drops = 0
  faulty.fault = req => req.url === blobPath(dropped) && req.headers.range === undefined && drops++ === 0 ? { dropAfter: 20_000 } : undefined
  const resumed = await Promise.all([1, 2].map(() => pullBlob(url(dropped))))
  for (const p of resumed) t.equal(p.digest, dropped.digest, 'the whole blob after a resume')
  // the resume asks from what was written: a Range, or the whole again when the cut came before the first write landed
  const asked = faulty.seen.filter(r => r.path === blobPath(dropped))
  t.equal(asked.length, 2, 'one GET, then one resume')
  t.equal(asked[0]!.range, undefined)
  t.ok(asked[1]!.range === undefined || /^bytes=[1-9]\d*-$/.test(asked[1]!.range), `the resume from the offset held (${asked[1]!.range ?? 'from 0'})`)

  const ranged = await newBlob(64 * 1024)
  faulty.fault = req => req.url === blobPath(ranged) ? { bytesPerSecond: 128 * 1024 } : undefined
  const [whole, part] = await Promise.all([pullBlob(url(ranged)), get(url(ranged), { range: 'bytes=1000-1999' })])
  t.equal(whole!.digest, ranged.digest)
  t.equal(part!.status, 206)
  t.same(part!.body, ranged.bytes.subarray(1000, 2000), 'the slice asked for, from the fill in flight')
  t.equal(faulty.count('GET', blobPath(ranged)), 1, 'one upstream GET for both')
  faulty.fault = undefined
  t.ok(await eventually(() => cached(ranged)), 'committed')
})

t.test('a connection dropped mid-blob is resumed with a Range; clients see a pause, not an error', async t => {
  const b = await newBlob(6 * MiB)
  let drops = 0
  faulty.fault = req => req.url === blobPath(b) && req.headers.range === undefined && drops++ === 0 ? { dropAfter: 2 * MiB + 123 } : undefined
  const resumes = await metric('ferry_fill_resumes_total')
  const pulls = await Promise.all([1, 2, 3].map(() => pullBlob(url(b))))
  for (const p of pulls) {
    t.equal(p.digest, b.digest)
    t.ok(p.complete)
  }
  const resumed = await ferry.waitForLogs(l => l.msg === 'upstream transfer broke; resuming' && l.digest === b.digest, 1)
  t.equal(resumed.length, 1)
  const offset = Number(resumed[0]?.offset)
  t.ok(offset > 0 && offset <= 2 * MiB + 123, `resumed from ${offset}, what ferry held when the connection dropped`)
  const asked = faulty.seen.filter(r => r.path === blobPath(b))
  t.same(asked.map(r => r.range), [undefined, `bytes=${offset}-`], 'one GET, then one Range from the offset held')
  t.ok(await eventually(() => cached(b)), 'committed to the cache (after the clients had their bytes)')
  t.equal(await metric('ferry_fill_resumes_total'), resumes + 1)
})

t.test('an upstream that stalls past bodyIdle is resumed', async t => {
  const b = await newBlob(3 * MiB)
  let stalls = 0
  faulty.fault = req => req.url === blobPath(b) && stalls++ === 0 ? { stallAfter: MiB } : undefined
  const p = await pullBlob(url(b))
  t.equal(p.digest, b.digest)
  t.ok(p.complete)
  const resumed = (await ferry.waitForLogs(l => l.msg === 'upstream transfer broke; resuming' && l.digest === b.digest, 1))[0]
  t.same(faulty.seen.filter(r => r.path === blobPath(b)).map(r => r.range), [undefined, `bytes=${String(resumed?.offset)}-`])
  t.equal(resumed?.offset, MiB, 'a stall loses nothing: resumed exactly where the bytes stopped')
  t.ok(await eventually(() => cached(b)), 'committed to the cache (after the clients had their bytes)')
})

t.test('an upstream that keeps dropping: after the resume attempts, clients are cut and nothing is cached', async t => {
  const b = await newBlob(2 * MiB)
  faulty.fault = req => req.url === blobPath(b) ? { dropAfter: 1000 } : undefined
  const pulls = await Promise.all([1, 2].map(() => pullBlob(url(b))))
  for (const p of pulls) {
    t.notOk(p.complete)
    t.ok(p.bytes < b.bytes.length)
  }
  t.equal(faulty.count('GET', blobPath(b)), 4, 'one GET and three resumes')
  await settle()
  t.notOk(cached(b))
  t.same(stagingFiles(), [])
  t.equal((await get(`${ferry.url}/v2/`)).status, 200, 'still serving')
})

t.test('an upstream that declares more bytes than it has: cut, not cached', async t => {
  const b = await newBlob(MiB)
  faulty.fault = req => req.url === blobPath(b) ? { contentLength: MiB + 500 } : undefined
  const p = await pullBlob(url(b))
  t.notOk(p.complete)
  t.equal(p.declared, MiB + 500, 'ferry passed on the declared length it was given')
  t.ok(p.bytes <= MiB, 'and never more bytes than it verified')
  await settle()
  t.notOk(cached(b))
  t.same(stagingFiles(), [])
})

t.test('an upstream that declares fewer bytes than the blob: cut, not cached', async t => {
  const b = await newBlob(MiB)
  faulty.fault = req => req.url === blobPath(b) ? { contentLength: MiB - 1000 } : undefined
  const p = await pullBlob(url(b))
  t.notOk(p.complete, 'the transfer was cut: the bytes under the declared length hash to something else')
  t.equal(p.declared, MiB - 1000, 'ferry passed on the declared length it was given')
  t.ok(p.bytes < MiB - 1000, `the last byte was held back (${p.bytes} bytes sent)`)
  t.not(p.digest, b.digest)
  await settle()
  t.notOk(cached(b))
  t.same(stagingFiles(), [])
})

t.test('upstream 500 and 429 on a blob', async t => {
  const b = await newBlob(1000)
  faulty.fault = () => ({ status: 500 })
  const five = await pullBlob(url(b))
  t.equal(five.status, 502)
  t.match(five.body, /UNAVAILABLE/)
  faulty.fault = () => ({ status: 429, headers: { 'retry-after': '3' } })
  const limited = await get(url(b))
  t.equal(limited.status, 429)
  t.equal(limited.header('retry-after'), '3')
  t.notOk(cached(b))
  faulty.fault = undefined
  t.equal((await pullBlob(url(b))).digest, b.digest)
})

t.test('a trickling upstream: clients get their first bytes long before the blob is complete', async t => {
  const b = await newBlob(MiB)
  faulty.fault = req => req.url === blobPath(b) ? { bytesPerSecond: MiB } : undefined
  const pulls = await Promise.all([1, 2, 3].map(() => pullBlob(url(b))))
  for (const p of pulls) {
    t.equal(p.digest, b.digest)
    t.ok(p.firstByteMs < p.totalMs / 3, `first byte at ${Math.round(p.firstByteMs)} ms of ${Math.round(p.totalMs)} ms`)
  }
  t.equal(faulty.count('GET', blobPath(b)), 1)
})

t.test('16 clients on one cold 64 MiB blob: one upstream GET, all verify, a slow reader delays no one', async t => {
  faulty.fault = undefined
  const b = await newBlob(64 * MiB)
  let releaseSlow!: () => void
  const slowDone = new Promise<void>(resolve => { releaseSlow = resolve })
  let slowBytesWhenOthersDone = -1
  const slow = pullBlob(url(b), { bytesPerSecond: MiB, until: slowDone, onRelease: n => { slowBytesWhenOthersDone = n } })
  const fast = await Promise.all(Array.from({ length: 15 }, () => pullBlob(url(b))))
  const committed = await eventually(() => cached(b), 3000)
  releaseSlow()
  const s = await slow
  for (const p of [...fast, s]) {
    t.equal(p.digest, b.digest)
    t.ok(p.complete)
  }
  t.equal(faulty.count('GET', blobPath(b)), 1, 'exactly one upstream GET')
  t.ok(committed, 'the fill finished while the slow client was still reading')
  t.ok(slowBytesWhenOthersDone >= 0 && slowBytesWhenOthersDone < 32 * MiB, `the slow client had ${slowBytesWhenOthersDone} bytes when the 15 others were done`)
})
