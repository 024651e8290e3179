// npm run bench -- --cold [--size MiB] [--runs N] [--floor] [--prof DIR] [--strace | --perf] · npm run bench -- --cold --small [--strace | --perf]
// The cold path alone, for profiling: one client pulls a blob no proxy has
// seen, through ferry and through distribution, several times on fresh
// blobs. Prints MB/s and CPU seconds per GiB of each target's processes.
// --floor adds bare Node.js proxies (floor-proxy.ts): what passing the bytes
// on costs here at the least, with hashing, and with the file written too.
// --prof DIR starts ferry with --cpu-prof (a .cpuprofile per process in DIR);
// --strace counts ferry's syscalls during the cold pulls (strace -c -f);
// --perf samples ferry's process, kernel included (perf record -e cpu-clock)
// and prints where the time went by symbol.
// --small measures the warm small-image load instead (as scenario 4), on
// ferry and on the Node limit (node-limit.ts), with CPU µs per request of
// each; --strace and --perf trace both.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startRegistry } from '../test/helpers/registry.ts'
import { pullBlobConcurrently, pullImages, verifyBlob } from './load.ts'
import { pushFile, randomFile, seedSmallImages } from './seed.ts'
import { pullImagesWrk } from './wrk.ts'
import { traced, traceMode } from './trace.ts'
import { cpuSeconds, peakRss, resetPeak, settleDisk, startDistributionProxy, upstreamBlobPath, warmFile, startFerryTarget, startNodeLimit, startFloorProxy, upstreamTarget, type Target } from './targets.ts'

const MiB = 1024 * 1024
const args = process.argv.slice(2)
const opt = (name: string): string | undefined => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined }
const size = Number(opt('--size') ?? 512) * MiB
const runs = Number(opt('--runs') ?? 3)
const prof = opt('--prof')

function log (msg: string): void { process.stderr.write(`[cold] ${msg}\n`) }

const dir = mkdtempSync(join(tmpdir(), 'ferry-cold-'))
const stops: (() => Promise<void>)[] = []
const small = args.includes('--small')
let upstream!: Awaited<ReturnType<typeof startRegistry>>
try {
  upstream = await startRegistry({ dir: join(dir, 'upstream') })
  stops.push(() => upstream.stop())
  if (args.includes('--small-cold')) {
    await smallColdRuns()
  } else if (small) {
    // the warm small-image load alone (as scenario 4), for weighing a change against it
    const images = await seedSmallImages(upstream.url, 200)
    const flags = nodeFlags()
    const ferry = await startFerryTarget(join(dir, 'ferry'), upstream.url, '1h', {}, flags)
    stops.push(() => ferry.stop())
    const cold = await pullImages(ferry.url, images, 32, 1)
    const warm = await warmSmall(ferry, images, 'ferry over the warm small-image load')
    process.stdout.write(`ferry small: cold ${cold.rate.toFixed(0)} pulls/s; warm ${warm}\n`)
    await ferry.stop()
    // the Node.js limit in the same run, for the ratio the issue's target is about
    const nodeLimit = await startNodeLimit(join(dir, 'node-limit'), upstream.url, images.flatMap(img => [
      [`/v2/${img.repo}/manifests/${img.tag}`, img.mediaType] as [string, string | null],
      ...img.blobs.map(b => [`/v2/${img.repo}/blobs/${b.digest}`, null] as [string, string | null]),
    ]), flags)
    stops.push(() => nodeLimit.stop())
    process.stdout.write(`node limit:  warm ${await warmSmall(nodeLimit, images, 'the Node limit over the same load')}\n`)
  }
  const digests: string[] = []
  for (let i = 0; i < (small || args.includes('--small-cold') ? 0 : runs * 2); i++) {
    const file = join(dir, `blob-${i}.bin`)
    const digest = await randomFile(file, size)
    await pushFile(upstream.url, 'cold/big', file, digest)
    rmSync(file)
    digests.push(digest)
  }
  if (!small && !args.includes('--small-cold')) await coldRuns(digests)
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => {})
  rmSync(dir, { recursive: true, force: true })
}

/** Node flags for the processes under test: --perf's symbol map, and FERRY_NODE_FLAGS (an experiment's). */
function nodeFlags (): string[] {
  return [...(args.includes('--perf') ? ['--perf-basic-prof'] : []), ...(process.env.FERRY_NODE_FLAGS?.split(' ').filter(Boolean) ?? [])]
}

async function coldRuns (digests: string[]): Promise<void> {
  log(`${runs * 2} blobs of ${size / MiB} MiB seeded`)
  const ferry = await startFerryTarget(join(dir, 'ferry'), upstream.url, '1h', {}, [...(prof === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${prof}`]), ...nodeFlags()])
  stops.push(() => ferry.stop())
  const distribution = await startDistributionProxy(join(dir, 'distribution'), upstream.url)
  stops.push(() => distribution.stop())
  const targets: [Target, string[]][] = [[upstreamTarget(upstream), digests.slice(0, runs)], [ferry, digests.slice(0, runs)], [distribution, digests.slice(runs)]]
  if (args.includes('--floor')) {
    // the least a Node.js process does to pass the bytes on, then with hashing, then with the file too
    for (const mode of ['raw', 'pipe', 'hash', 'hash-thread', 'hash+file']) targets.push([await startFloor(mode), digests.slice(0, runs)])
  }
  for (const [t, ds] of targets) {
    resetPeak(t.pids())
    const rates: number[] = []
    const cpus: number[] = []
    await traced(traceMode(args), dir, t === ferry ? ferry.pids() : [], `ferry over ${runs} cold pulls of ${size / MiB} MiB`, async () => { for (const d of ds) {
      settleDisk()
      warmFile(upstreamBlobPath(upstream.dir, d))
      const before = cpuSeconds(t.pids())
      const run = await pullBlobConcurrently(`${t.url}/v2/cold/big/blobs/${d}`, 1, size)
      if (run.ok !== 1) throw new Error(`${t.name}: the cold pull failed`)
      cpus.push((cpuSeconds(t.pids()) - before) / (size / 1024 ** 3))
      rates.push(size / 1e6 / (run.wallMs / 1000))
    } })
    const coldPeak = peakRss(t.pids())
    const verified = await verifyBlob(`${t.url}/v2/cold/big/blobs/${ds[0]!}`, 1, ds[0]!)
    process.stdout.write(`${t.name.padEnd(13)} cold MB/s ${rates.map(r => r.toFixed(0)).join(' ')}  CPU s/GiB ${cpus.map(c => c.toFixed(2)).join(' ')}  peak RSS ${(coldPeak / MiB).toFixed(0)} MiB (cold) ${(peakRss(t.pids()) / MiB).toFixed(0)} MiB (and one warm pull)  verified ${verified}\n`)
    if (t === ferry && process.env.FERRY_OUTPUT !== undefined) (await import('node:fs')).writeFileSync(process.env.FERRY_OUTPUT, ferry.proc.lines.join('\n'))
  }
}

/** Three 5 s wrk passes of the warm small-image load on `t` (traced if asked): rates, p99s, CPU per request, peak RSS. */
async function warmSmall (t: Target, images: Parameters<typeof pullImagesWrk>[1], label: string): Promise<string> {
  resetPeak(t.pids())
  const cpu = cpuSeconds(t.pids())
  const runs = await traced(traceMode(args), dir, t.pids(), label, async () => {
    const out = []
    for (let i = 0; i < 3; i++) out.push(await pullImagesWrk(t.url, images, 32, 5))
    return out
  })
  const us = (cpuSeconds(t.pids()) - cpu) * 1e6 / runs.reduce((n, r) => n + r.requests, 0)
  return `${runs.map(r => `${r.rate.toFixed(0)} pulls/s p99 ${r.p99Ms.toFixed(2)} ms`).join(', ')}; CPU ${us.toFixed(1)} µs/request; peak RSS ${(peakRss(t.pids()) / MiB).toFixed(0)} MiB`
}

/**
 * --small-cold: cold small-image pulls (as scenario 4's cold pass), direct and
 * through ferry, alternating on fresh images so neither finds the upstream's
 * page cache warmer: pulls/s, and per pull the CPU of the upstream, of ferry
 * and of this client, and what the upstream was asked.
 */
async function smallColdRuns (): Promise<void> {
  const count = Number(opt('--images') ?? 200)
  const concurrency = Number(opt('--clients') ?? 32)
  const flags = nodeFlags()
  const ferry = await startFerryTarget(join(dir, 'ferry'), upstream.url, '1h', {}, flags)
  stops.push(() => ferry.stop())
  const up = upstreamTarget(upstream)
  const floors: Target[] = []
  if (args.includes('--floor')) {
    // the least a Node.js proxy does for the same pulls: pass the bytes on; then hash them and write a file each
    for (const mode of ['pipe', 'hash+file']) floors.push(await startFloor(mode))
  }
  for (let round = 0; round < runs; round++) {
    for (const t of round % 2 === 0 ? [up, ferry, ...floors] : [...floors, ferry, up]) {
      const images = await seedSmallImages(upstream.url, count, `sc${round}${t.name.replace(/[^a-z]/g, '')}`)
      settleDisk()
      const asked = upstream.requests().length
      const cpuUp = cpuSeconds(up.pids())
      const cpuFerry = cpuSeconds(t.pids())
      const cpuClient = process.cpuUsage()
      const run = await traced(traceMode(args), dir, t === ferry ? ferry.pids() : [], `ferry over ${count} cold small images`, async () => await pullImages(t.url, images, concurrency, 1))
      const client = process.cpuUsage(cpuClient)
      const requests = upstream.requests().slice(asked)
      const byKind = new Map<string, number>()
      for (const r of requests) {
        const kind = `${r.method} ${/\/manifests\//.test(r.path) ? 'manifest' : /\/blobs\//.test(r.path) ? 'blob' : r.path}`
        byKind.set(kind, (byKind.get(kind) ?? 0) + 1)
      }
      const per = (s: number): string => `${(s * 1000 / run.pulls).toFixed(2)} ms`
      process.stdout.write(`${t.name.padEnd(9)} round ${round}: ${run.rate.toFixed(1)} pulls/s p50 ${run.p50Ms.toFixed(0)} ms p99 ${run.p99Ms.toFixed(0)} ms failed ${run.failed}; CPU per pull: upstream ${per(cpuSeconds(up.pids()) - cpuUp)}, proxy ${per(t === up ? 0 : cpuSeconds(t.pids()) - cpuFerry)}, client ${per((client.user + client.system) / 1e6)}; upstream asked ${[...byKind].map(([k, n]) => `${k} ${(n / run.pulls).toFixed(2)}`).join(', ')} per pull\n`)
    }
  }
}

/** A bare Node.js proxy of floor-proxy.ts in `mode`, in front of the upstream, stopped with the run. */
async function startFloor (mode: string): Promise<Target> {
  const t = await startFloorProxy(mode, upstream.url, join(dir, mode))
  stops.push(() => t.stop())
  return t
}
