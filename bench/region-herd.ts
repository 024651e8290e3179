// npm run bench -- --region-herd [--size MiB] [--runs N] [--strace]
// Scenario 8's cold herd (then the same warm) alone, for weighing what a second proxy costs: a
// region (Redis, an S3 store served by s3rver in this process, an L1 disk per
// proxy) of one proxy and of two, 16 curl clients on a cold blob split
// evenly over the proxies. Prints the wall and the CPU seconds of each
// proxy, of this process (s3rver and the load's bookkeeping) and of the
// upstream, and the bytes each proxy's L1 and the store were written.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startRedis } from '../test/helpers/redis.ts'
import { startRegistry } from '../test/helpers/registry.ts'
import { startS3Server } from '../test/helpers/s3-server.ts'
import { pullBlobConcurrently } from './load.ts'
import { pushFile, randomFile } from './seed.ts'
import { startRegionProxy, type Proxy } from './region.ts'
import { cpuSeconds, cpuSecondsSettled, settleDisk, upstreamBlobPath, warmFile } from './targets.ts'
import { traced } from './trace.ts'

const MiB = 1024 * 1024
const args = process.argv.slice(2)
const opt = (name: string): string | undefined => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined }
const size = Number(opt('--size') ?? 512) * MiB
const runs = Number(opt('--runs') ?? 2)
const dir = mkdtempSync(join(tmpdir(), 'ferry-region-herd-'))
const stops: (() => Promise<void>)[] = []
try {
  const upstream = await startRegistry({ dir: join(dir, 'upstream') })
  stops.push(() => upstream.stop())
  const redis = await startRedis()
  stops.push(() => redis.stop())
  const s3 = await startS3Server(join(dir, 's3'))
  stops.push(() => s3.close())
  for (let r = 0; r < runs; r++) {
    for (const count of r % 2 === 0 ? [1, 2] : [2, 1]) {
      const file = join(dir, 'blob.bin')
      const digest = await randomFile(file, size)
      await pushFile(upstream.url, 'bench/big', file, digest)
      rmSync(file)
      const proxies: Proxy[] = []
      for (let i = 0; i < count; i++) {
        proxies.push(await startRegionProxy({ dir: join(dir, `r${r}-${count}-${i}`), region: `herd${r}${count}`, redisUrl: redis.url, s3, prefix: `herd${r}${count}/`, upstreamUrl: upstream.url }))
      }
      settleDisk()
      warmFile(upstreamBlobPath(upstream.dir, digest))
      const cpu = (): number[] => [...proxies.map(p => cpuSeconds(p.pids())), cpuSeconds([upstream.proc.child.pid!])]
      const names = [...proxies.map((_, i) => `proxy ${i}`), 'upstream']
      /** 16 clients split over the proxies; the wall, then (once the proxies are quiet) each process's CPU and what the store was asked. */
      const herd = async (): Promise<string> => {
        const before = cpu()
        const s3Asked = s3.requests().length
        const self0 = process.cpuUsage()
        const started = performance.now()
        const runsOf = await Promise.all(proxies.map(p => pullBlobConcurrently(`${p.url}/v2/bench/big/blobs/${digest}`, 16 / count, size)))
        const wall = (performance.now() - started) / 1000
        // the leader's commit to the store may still be running: wait for the processes to go quiet
        await new Promise(resolve => setTimeout(resolve, 1000))
        await cpuSecondsSettled(() => proxies.flatMap(p => p.pids()))
        const after = cpu()
        const self = process.cpuUsage(self0)
        return `wall ${wall.toFixed(2)} s, ${runsOf.reduce((n, x) => n + x.ok, 0)}/16 complete, slowest first byte ${Math.max(...runsOf.map(x => x.ttfbMaxMs)).toFixed(0)} ms; CPU s: ${names.map((n, i) => `${n} ${(after[i]! - before[i]!).toFixed(2)}`).join(', ')}, bench+s3rver ${((self.user + self.system) / 1e6).toFixed(2)}; the store asked ${summarize(s3.requests().slice(s3Asked))}`
      }
      const label = `${count} prox${count === 1 ? 'y  ' : 'ies'} run ${r}`
      // --strace: each proxy's syscalls over the cold herd, a report each
      const cold = proxies.reduce<() => Promise<string>>((work, p, i) => () => traced(args.includes('--strace') ? 'strace' : undefined, dir, p.pids(), `proxy ${i} of ${count}, cold`, work), herd)
      process.stdout.write(`${label}: cold ${await cold()}; upstream GETs ${upstream.count('GET', `/blobs/${digest}`)}\n`)
      // warm: the same herd again, each proxy from its L1
      process.stdout.write(`${label}: warm ${await herd()}\n`)
      for (const p of proxies) await p.stop()
    }
  }
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => {})
  rmSync(dir, { recursive: true, force: true })
}

function summarize (asked: { method: string, path: string }[]): string {
  const kinds = new Map<string, number>()
  for (const a of asked) {
    const kind = `${a.method} ${a.path.includes('uploadId') ? 'part' : a.path.includes('uploads') ? 'upload' : a.path.includes('/blobs/') ? 'blob' : 'other'}`
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
  }
  return [...kinds].map(([k, n]) => `${k} ${n}`).join(', ')
}
