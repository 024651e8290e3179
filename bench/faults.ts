// npm run bench -- --faults [--quick]
// A region of three proxies (Redis, an S3 server, an L1 disk each) under a
// mixed pull load while things break: a proxy killed with SIGKILL and
// started again, Redis restarted, the S3 server restarted, the upstream
// answering 503, cutting transfers, stalling, or corrupting bytes. Clients
// behave as containerd does with several mirrors: a failed pull goes to the
// next proxy, then round again after a pause. Prints pulls attempted and
// completed, wrong bytes served (must be 0), blobs cached with a wrong
// digest (must be 0, every object of the store and every L1 file hashed at
// the end), the longest time any pull kept failing, and peak RSS; writes
// FAULTS.md beside this file for a full run.
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { stringify } from 'yaml'
import { S3BlobStore } from '../src/store/s3-blob-store.ts'
import { collect } from '../src/io/body.ts'
import { CLI, NODE_FLAGS } from '../test/helpers/ferry.ts'
import { startFaulty, type Fault } from '../test/helpers/faulty.ts'
import { blob, pushBlob, type Blob } from '../test/helpers/images.ts'
import { freePort, startProc, type Proc } from '../test/helpers/procs.ts'
import { startRedis } from '../test/helpers/redis.ts'
import { startRegistry } from '../test/helpers/registry.ts'
import { startS3Server, type S3Server } from '../test/helpers/s3-server.ts'
import { childPids, peakRss, resetPeak, waitForPort } from './targets.ts'

const KiB = 1024
const MiB = 1024 * KiB
const args = process.argv.slice(2)
const quick = args.includes('--quick')
const here = dirname(fileURLToPath(import.meta.url))
const SIZES = quick
  ? { seconds: 25, clients: 6, cold: 120, warm: 20, medium: 4 }
  : { seconds: 90, clients: 8, cold: 400, warm: 40, medium: 8 }
/** A pull that has kept failing this long is given up and counted as not completed. */
const GIVE_UP_MS = 60_000
const PULL_TIMEOUT_MS = 20_000

function log (msg: string): void { process.stderr.write(`[faults] ${msg}\n`) }
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!

interface Got { status: number, bytes: number, digest: string, complete: boolean }

/** One GET, hashed as it arrives, given up after PULL_TIMEOUT_MS without an end. */
function pull (url: string): Promise<Got> {
  return new Promise(resolve => {
    const hash = createHash('sha256')
    let bytes = 0
    let done = false
    const finish = (g: Got): void => { if (!done) { done = true; resolve(g) } }
    const req = request(url, { timeout: PULL_TIMEOUT_MS }, res => {
      res.on('data', (c: Buffer) => { hash.update(c); bytes += c.length })
      res.on('end', () => {
        const declared = Number(res.headers['content-length'])
        finish({ status: res.statusCode ?? 0, bytes, digest: 'sha256:' + hash.digest('hex'), complete: res.complete && declared === bytes })
      })
      res.on('error', () => finish({ status: res.statusCode ?? 0, bytes, digest: '', complete: false }))
      res.on('aborted', () => finish({ status: res.statusCode ?? 0, bytes, digest: '', complete: false }))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', () => finish({ status: 0, bytes, digest: '', complete: false }))
    req.end()
  })
}

interface Proxy { port: number, url: string, config: string, proc: Proc | undefined, alive: boolean }

export interface FaultRun {
  readonly seconds: number
  readonly attempted: number
  readonly completed: number
  readonly gaveUp: number
  readonly requests: number
  readonly failedRequests: number
  readonly wrongBytesServed: number
  readonly cachedObjectsChecked: number
  readonly cachedWithWrongDigest: number
  readonly longestFailingMs: number
  readonly peakRssMiB: number
  readonly faults: Record<string, number>
}

async function main (): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-faults-'))
  const stops: (() => Promise<void>)[] = []
  const stopAll = async (): Promise<void> => { for (const s of stops.splice(0).reverse()) await s().catch(() => {}) }
  process.once('SIGINT', () => { void stopAll().finally(() => process.exit(130)) })
  try {
    const result = await run(dir, stops)
    report(result)
    if (result.wrongBytesServed > 0 || result.cachedWithWrongDigest > 0) process.exitCode = 1
  } finally {
    await stopAll()
    rmSync(dir, { recursive: true, force: true })
  }
}

async function run (dir: string, stops: (() => Promise<void>)[]): Promise<FaultRun> {
  const upstream = await startRegistry()
  stops.push(() => upstream.stop())
  const faulty = await startFaulty(upstream.url)
  stops.push(() => faulty.close())
  const redis = await startRedis()
  stops.push(() => redis.stop())
  const s3dir = join(dir, 's3')
  let s3: S3Server = await startS3Server(s3dir)
  const s3port = s3.port
  stops.push(() => s3.close())

  log(`seeding: ${SIZES.cold} cold small blobs, ${SIZES.warm} warm, ${SIZES.medium} medium`)
  const make = (n: number, min: number, max: number): Blob[] => Array.from({ length: n }, () => blob('application/octet-stream', randomBytes(min + Math.floor(Math.random() * (max - min)))))
  const cold = make(SIZES.cold, 16 * KiB, 256 * KiB)
  const warm = make(SIZES.warm, 16 * KiB, 1 * MiB)
  const medium = make(SIZES.medium, 4 * MiB, 24 * MiB)
  for (const b of [...cold, ...warm, ...medium]) await pushBlob(upstream.url, 'faults/app', b)

  const proxies: Proxy[] = []
  for (let i = 0; i < 3; i++) {
    const port = await freePort()
    const pdir = join(dir, `proxy${i}`)
    mkdirSync(pdir, { recursive: true })
    const config = join(pdir, 'ferry.yaml')
    writeFileSync(config, stringify({
      region: 'faults', listen: `127.0.0.1:${port}`, data: join(pdir, 'data'), log: { level: 'warn' },
      state: { type: 'redis', url: redis.url, lease: '3s' },
      store: { type: 's3', bucket: s3.bucket, endpoint: s3.endpoint, region: 'us-east-1', prefix: 'faults/' },
      // small enough that L1 evicts during the run and misses reach the store
      l1: { path: join(pdir, 'l1'), maxBytes: '48MiB' },
      cache: { maxBytes: '10GiB', resumeAttempts: 3 },
      upstreams: [{ name: 'up', url: faulty.url, default: true, timeouts: { bodyIdle: '2s' } }],
    }))
    proxies.push({ port, url: `http://127.0.0.1:${port}`, config, proc: undefined, alive: false })
  }
  const start = async (p: Proxy): Promise<void> => {
    p.proc = startProc(process.execPath, [...NODE_FLAGS, CLI, 'serve', '--config', p.config], { env: { ...process.env, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' } })
    await waitForPort(p.port).catch((err: Error) => { throw new Error(`${err.message}:\n${p.proc!.lines.slice(-5).join('\n')}`) })
    p.alive = true
  }
  for (const p of proxies) await start(p)
  stops.push(async () => { for (const p of proxies) await p.proc?.stop() })

  let rss = 0
  const sampler = setInterval(() => {
    const pids = proxies.flatMap(p => p.proc?.child.pid !== undefined && p.alive ? childPids(p.proc.child.pid) : [])
    rss = Math.max(rss, peakRss(pids))
  }, 500)
  resetPeak(proxies.flatMap(p => childPids(p.proc!.child.pid!)))

  const deadline = Date.now() + SIZES.seconds * 1000
  const faults: Record<string, number> = {}
  const chaos = (async () => {
    while (Date.now() < deadline - 3000) {
      await sleep(1500 + Math.random() * 2000)
      const action = pick(['kill', 'kill', 'redis', 's3', 'upstream-503', 'upstream-cut', 'upstream-stall', 'corrupt', 'corrupt'] as const)
      faults[action] = (faults[action] ?? 0) + 1
      const began = Date.now()
      switch (action) {
        case 'kill': {
          const p = pick(proxies.filter(x => x.alive))
          p.alive = false
          await p.proc!.stop('SIGKILL')
          await sleep(500 + Math.random() * 1500)
          await start(p)
          break
        }
        case 'redis':
          await redis.stop()
          await sleep(500 + Math.random() * 1500)
          await redis.restart()
          break
        case 's3':
          await s3.crash()
          await sleep(500 + Math.random() * 1500)
          s3 = await startS3Server(s3dir, s3port)
          break
        default: {
          const fault: Fault = action === 'upstream-503' ? { status: 503 }
            : action === 'upstream-cut' ? { dropAfter: Math.floor(Math.random() * 64 * KiB) }
              : action === 'upstream-stall' ? { stallAfter: Math.floor(Math.random() * 64 * KiB), stallMs: 4000 }
                : { corruptAt: Math.floor(Math.random() * 16 * KiB) }
          faulty.fault = req => req.method === 'GET' && req.url?.includes('/blobs/') === true ? fault : undefined
          await sleep(1000 + Math.random() * 2000)
          faulty.fault = undefined
        }
      }
      log(`${action}: ${Date.now() - began} ms`)
    }
  })()

  let attempted = 0; let completed = 0; let gaveUp = 0; let requests = 0; let failedRequests = 0; let wrong = 0; let longest = 0
  const client = async (): Promise<void> => {
    while (Date.now() < deadline) {
      const b = Math.random() < 0.3 && cold.length > 0 ? cold.pop()! : Math.random() < 0.8 ? pick(warm) : pick(medium)
      attempted++
      let firstFailure: number | undefined
      let first = Math.floor(Math.random() * proxies.length)
      for (;;) {
        const p = proxies[first++ % proxies.length]!
        requests++
        const got = await pull(`${p.url}/v2/faults/app/blobs/${b.digest}`)
        if (got.status === 200 && got.complete && got.bytes === b.bytes.length) {
          if (got.digest !== b.digest) wrong++
          else completed++
          if (firstFailure !== undefined) longest = Math.max(longest, Date.now() - firstFailure)
          break
        }
        failedRequests++
        firstFailure ??= Date.now()
        if (Date.now() - firstFailure > GIVE_UP_MS) { gaveUp++; longest = Math.max(longest, Date.now() - firstFailure); break }
        // a round of every proxy failed: pause as a runtime's backoff would
        if (first % proxies.length === 0) await sleep(250)
      }
    }
  }
  log(`${SIZES.clients} clients for ${SIZES.seconds} s while faults are injected`)
  await Promise.all([chaos, ...Array.from({ length: SIZES.clients }, client)])
  clearInterval(sampler)
  faulty.fault = undefined

  log('hashing every cached object: the store, then each L1')
  for (const p of proxies) await p.proc?.stop()
  let checked = 0; let bad = 0
  const store = new S3BlobStore({ bucket: s3.bucket, endpoint: s3.endpoint, region: 'us-east-1', prefix: 'faults/', forcePathStyle: true })
  for await (const d of store.list()) {
    const opened = await store.open(d)
    if (opened === undefined) continue
    const bytes = await collect(opened.body(), 64 * MiB)
    checked++
    if (createHash('sha256').update(bytes).digest('hex') !== d.hex) bad++
  }
  store.close?.()
  for (let i = 0; i < proxies.length; i++) {
    const root = join(dir, `proxy${i}`, 'l1', 'sha256')
    for (const prefix of safeList(root)) {
      for (const name of safeList(join(root, prefix))) {
        if (!/^[a-f0-9]{64}$/.test(name)) continue
        checked++
        if (await hashFile(join(root, prefix, name)) !== name) bad++
      }
    }
  }
  return {
    seconds: SIZES.seconds, attempted, completed, gaveUp, requests, failedRequests,
    wrongBytesServed: wrong, cachedObjectsChecked: checked, cachedWithWrongDigest: bad,
    longestFailingMs: longest, peakRssMiB: Math.round(rss / MiB), faults,
  }
}

function safeList (d: string): string[] { try { return readdirSync(d) } catch { return [] } }

async function hashFile (path: string): Promise<string> {
  const h = createHash('sha256')
  for await (const c of createReadStream(path)) h.update(c as Buffer)
  return h.digest('hex')
}

function report (r: FaultRun): void {
  const rows: [string, string][] = [
    ['duration', `${r.seconds} s`],
    ['faults injected', Object.entries(r.faults).map(([k, v]) => `${k} ×${v}`).join(', ')],
    ['pulls attempted', String(r.attempted)],
    ['pulls completed', `${r.completed} (${(100 * r.completed / Math.max(1, r.attempted)).toFixed(1)} %)`],
    ['pulls given up (failing > 60 s)', String(r.gaveUp)],
    ['requests (with retries on the next proxy)', `${r.requests}, ${r.failedRequests} failed`],
    ['wrong bytes served (must be 0)', String(r.wrongBytesServed)],
    ['cached with a wrong digest (must be 0)', `${r.cachedWithWrongDigest} of ${r.cachedObjectsChecked} objects hashed`],
    ['longest time a pull kept failing', `${(r.longestFailingMs / 1000).toFixed(1)} s`],
    ['peak RSS, the three proxies together (VmHWM summed)', `${r.peakRssMiB} MiB`],
  ]
  const table = ['| figure | value |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n')
  process.stdout.write(table + '\n')
  if (!quick) {
    writeFileSync(join(here, 'FAULTS.md'), `# Fault run\n\n\`npm run bench -- --faults\`, ${new Date().toISOString()}: a region of three proxies (Redis, s3rver, L1 each), ${SIZES.clients} clients pulling blobs for ${r.seconds} s, moving to the next proxy when one fails.\n\n${table}\n`)
    writeFileSync(join(here, 'faults.json'), JSON.stringify(r, null, 2) + '\n')
  }
}

main().catch(err => {
  process.stderr.write(`[faults] failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
})
