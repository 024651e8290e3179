// npm run bench -- --catalog-flood [--repositories N] [--size MiB] [--runs N] [--path /v2/...]
// What a flood of catalog requests costs the pulls beside it. The embedded
// state answers /v2/_catalog by walking every repository folder, one
// directory read per folder on Node's thread pool, the same pool a fill's
// writes and a warm pull's reads wait in. /v2/_catalog answers anonymous
// callers when the rules let anyone pull, so anyone can keep a walk running.
// One ferry whose state holds N hosted repositories (10,000) pulls a big
// blob cold, then warm, alone and then while 16 clients ask for the catalog
// without pause; prints each pull's MB/s, the catalog's answers a second and
// one catalog answer's time alone. --path floods another path instead (`/v2/`, the cheapest answer, for
// what any flood of small requests costs).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Pool } from 'undici'
import { startRegistry } from '../test/helpers/registry.ts'
import { seedRepositories } from './console.ts'
import { median, pullBlobConcurrently } from './load.ts'
import { pushFile, randomFile } from './seed.ts'
import { settleDisk, startFerryTarget, upstreamBlobPath, warmFile } from './targets.ts'

const MiB = 1024 * 1024
const args = process.argv.slice(2)
const opt = (name: string): string | undefined => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined }
const repositories = Number(opt('--repositories') ?? 10_000)
const size = Number(opt('--size') ?? 256) * MiB
const runs = Number(opt('--runs') ?? 2)
const floodPath = opt('--path') ?? '/v2/_catalog?n=100'
const dir = mkdtempSync(join(tmpdir(), 'ferry-catalog-flood-'))
const stops: (() => Promise<void>)[] = []

/** 16 clients asking for `floodPath` (the catalog's first page) without pause until `stop`; how many answers (all must be 200). */
function flood (url: string): { stop: () => Promise<{ answers: number, seconds: number }> } {
  const pool = new Pool(url, { connections: 16 })
  let going = true
  let answers = 0
  const started = performance.now()
  const clients = Array.from({ length: 16 }, async () => {
    while (going) {
      const res = await pool.request({ method: 'GET', path: floodPath })
      await res.body.dump()
      if (res.statusCode !== 200) throw new Error(`${floodPath} answered ${res.statusCode}`)
      answers++
    }
  })
  return {
    async stop () {
      going = false
      await Promise.all(clients)
      await pool.close()
      return { answers, seconds: (performance.now() - started) / 1000 }
    },
  }
}

try {
  const upstream = await startRegistry({ dir: join(dir, 'upstream') })
  stops.push(() => upstream.stop())
  const ferryDir = join(dir, 'ferry')
  await seedRepositories(join(ferryDir, 'ferry-data'), repositories)
  const ferry = await startFerryTarget(ferryDir, upstream.url, '1h', { hosted: [{ prefix: 'acme/' }] })
  stops.push(() => ferry.stop())
  const catalogMs: number[] = []
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now()
    const r = await fetch(`${ferry.url}/v2/_catalog?n=100`)
    await r.arrayBuffer()
    if (r.status !== 200) throw new Error(`the catalog answered ${r.status}`)
    catalogMs.push(performance.now() - t0)
  }
  process.stdout.write(`catalog alone over ${repositories} repositories: the first answer (a walk) ${catalogMs[0]!.toFixed(0)} ms, the next four (the kept walk) ${median(catalogMs.slice(1)).toFixed(1)} ms\n`)
  const rows: Record<string, { coldMBps: number[], warmMBps: number[], catalogPerSecond: number[] }> = {}
  for (let r = 0; r < runs; r++) {
    for (const flooded of r % 2 === 0 ? [false, true] : [true, false]) {
      const file = join(dir, 'blob.bin')
      const digest = await randomFile(file, size)
      await pushFile(upstream.url, 'bench/big', file, digest)
      rmSync(file)
      settleDisk()
      warmFile(upstreamBlobPath(upstream.dir, digest))
      const url = `${ferry.url}/v2/bench/big/blobs/${digest}`
      const load = flooded ? flood(ferry.url) : undefined
      const cold = await pullBlobConcurrently(url, 1, size)
      const warm = await pullBlobConcurrently(url, 1, size)
      const catalog = await load?.stop()
      if (cold.ok !== 1 || warm.ok !== 1) throw new Error('a pull did not get the whole blob')
      const row = rows[flooded ? 'flood' : 'alone'] ??= { coldMBps: [], warmMBps: [], catalogPerSecond: [] }
      row.coldMBps.push(size / 1e6 / (cold.wallMs / 1000))
      row.warmMBps.push(size / 1e6 / (warm.wallMs / 1000))
      if (catalog !== undefined) row.catalogPerSecond.push(catalog.answers / catalog.seconds)
      process.stdout.write(`${flooded ? `with 16 clients asking for ${floodPath} without pause` : 'alone'}: cold ${row.coldMBps.at(-1)!.toFixed(0)} MB/s, warm ${row.warmMBps.at(-1)!.toFixed(0)} MB/s` +
        (catalog !== undefined ? `; ${(catalog.answers / catalog.seconds).toFixed(0)} answers/s` : '') + '\n')
    }
  }
  process.stdout.write(JSON.stringify({ repositories, sizeMiB: size / MiB, floodPath, catalogFirstMs: catalogMs[0], catalogKeptMs: median(catalogMs.slice(1)), rows }, null, 2) + '\n')
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => {})
  rmSync(dir, { recursive: true, force: true })
}
