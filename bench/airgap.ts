// Scenario 11: air-gap. The same images (one big random layer each) go
// from an upstream to a disk and from the disk into a registry, by ferry
// (export from a cold connected region; import into a region with no
// upstream) and by skopeo (copy docker:// to an oci: directory, image by
// image; then oci: to a plain docker-registry). Throughput is the images'
// bytes over the wall time of each whole command.
import { execFile } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { stringify } from 'yaml'
import { CLI, NODE_FLAGS } from '../test/helpers/ferry.ts'
import { blob, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, pushBlob, pushManifest } from '../test/helpers/images.ts'
import { requireBinary, startRegistry, type Registry } from '../test/helpers/registry.ts'
import { pushFile, randomFile } from './seed.ts'
import { settleDisk } from './targets.ts'

const run = promisify(execFile)

export interface AirgapRun {
  readonly images: number
  readonly bytes: number
  readonly ferryExportMBps: number
  /** The same export again, from the region it filled: the bundle's share of a cold export. */
  readonly ferryWarmExportMBps?: number
  readonly skopeoExportMBps: number
  readonly ferryImportMBps: number
  readonly skopeoImportMBps: number
  /** Every image imported by ferry reads back with its digest. */
  readonly verified: number
}

async function seed (upstream: Registry, dir: string, count: number, layerSize: number): Promise<string[]> {
  const digests: string[] = []
  for (let i = 0; i < count; i++) {
    const path = join(dir, `layer-${i}`)
    const layer = await randomFile(path, layerSize)
    await pushFile(upstream.url, `airgap/img-${i}`, path, layer)
    const config = blob(OCI_CONFIG, Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer] }, n: i })))
    await pushBlob(upstream.url, `airgap/img-${i}`, config)
    const manifest = blob(OCI_MANIFEST, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.bytes.length }, layers: [{ mediaType: OCI_LAYER, digest: layer, size: layerSize }] })))
    await pushManifest(upstream.url, `airgap/img-${i}`, 'v1', manifest)
    digests.push(manifest.digest)
  }
  return digests
}

async function timed (work: () => Promise<unknown>): Promise<number> {
  const started = performance.now()
  await work()
  return (performance.now() - started) / 1000
}

export async function airgapScenario (opts: { dir: string, count: number, layerSize: number, stops: (() => Promise<void>)[], log: (msg: string) => void }): Promise<AirgapRun> {
  requireBinary('skopeo', 'skopeo')
  const { dir, count, layerSize, log } = opts
  mkdirSync(dir, { recursive: true })
  const upstream = await startRegistry()
  opts.stops.push(() => upstream.stop())
  const target = await startRegistry()
  opts.stops.push(() => target.stop())
  log(`11. air-gap: seeding ${count} images of ${layerSize / 1024 / 1024} MiB`)
  const digests = await seed(upstream, dir, count, layerSize)
  const bytes = count * layerSize

  const connected = join(dir, 'connected.yaml')
  writeFileSync(connected, stringify({ listen: '127.0.0.1:0', data: join(dir, 'connected-data'), log: { level: 'warn' }, upstreams: [{ name: 'up', url: upstream.url, prefix: 'bench.up' }] }))
  const site = join(dir, 'site.yaml')
  writeFileSync(site, stringify({ listen: '127.0.0.1:0', data: join(dir, 'site-data'), log: { level: 'warn' }, upstreams: [], hosted: [{ prefix: 'bench.up/' }] }))
  const list = join(dir, 'mirror.yaml')
  writeFileSync(list, stringify({ images: digests.map((_, i) => ({ name: `bench.up/airgap/img-${i}`, tags: ['v1'], referrers: false })) }))
  const ferry = (...args: string[]): Promise<unknown> => run(process.execPath, [...NODE_FLAGS, CLI, ...args], { maxBuffer: 64 * 1024 * 1024 })

  log('11. air-gap: ferry export (cold region), then skopeo copy to oci:')
  const bundle = join(dir, 'bundle')
  settleDisk() // what the step before wrote is flushed now, not during this one
  const ferryExport = await timed(() => ferry('export', '--config', connected, '--list', list, '--out', bundle))
  settleDisk()
  const warmBundle = join(dir, 'bundle-warm')
  const ferryWarmExport = await timed(() => ferry('export', '--config', connected, '--list', list, '--out', warmBundle))
  rmSync(warmBundle, { recursive: true, force: true })
  const layout = join(dir, 'layout')
  settleDisk()
  const skopeoExport = await timed(async () => {
    for (let i = 0; i < count; i++) {
      await run('skopeo', ['--insecure-policy', 'copy', '--src-tls-verify=false', `docker://${upstream.host}/airgap/img-${i}:v1`, `oci:${layout}:img-${i}`])
    }
  })

  log('11. air-gap: ferry import, then skopeo copy from oci:')
  settleDisk()
  const ferryImport = await timed(() => ferry('import', '--config', site, bundle))
  settleDisk()
  const skopeoImport = await timed(async () => {
    for (let i = 0; i < count; i++) {
      await run('skopeo', ['--insecure-policy', 'copy', '--dest-tls-verify=false', `oci:${layout}:img-${i}`, `docker://${target.host}/airgap/img-${i}:v1`])
    }
  })

  // untimed: the imported region serves every image under its name
  const inv = JSON.parse(String(((await ferry('inventory', '--config', site)) as { stdout: string }).stdout)) as { repositories: { name: string, tags: Record<string, string> }[] }
  const verified = digests.filter((d, i) => inv.repositories.find(r => r.name === `bench.up/airgap/img-${i}`)?.tags.v1 === d).length
  const mbps = (s: number): number => bytes / 1e6 / s
  return { images: count, bytes, ferryExportMBps: mbps(ferryExport), ferryWarmExportMBps: mbps(ferryWarmExport), skopeoExportMBps: mbps(skopeoExport), ferryImportMBps: mbps(ferryImport), skopeoImportMBps: mbps(skopeoImport), verified }
}

/**
 * `npm run bench -- --mirror [--runs N] [--against OTHER/dist/cli.js]`:
 * `ferry mirror` of the scenario's images into a fresh region, on a
 * settled disk; with --against, another build's CLI in alternating turns
 * (a before and after).
 */
export async function mirrorRuns (opts: { dir: string, count: number, layerSize: number, runs: number, against: string | undefined, stops: (() => Promise<void>)[] }): Promise<void> {
  const upstream = await startRegistry()
  opts.stops.push(() => upstream.stop())
  await seed(upstream, opts.dir, opts.count, opts.layerSize)
  const list = join(opts.dir, 'mirror.yaml')
  writeFileSync(list, stringify({ images: Array.from({ length: opts.count }, (_, i) => ({ name: `bench.up/airgap/img-${i}`, tags: ['v1'], referrers: false })) }))
  const builds: [string, string][] = [['this build', CLI], ...(opts.against === undefined ? [] : [['--against', opts.against] as [string, string]])]
  for (let r = 0; r < opts.runs; r++) {
    for (const [name, cli] of r % 2 === 0 ? builds : [...builds].reverse()) {
      const data = join(opts.dir, `data-${r}-${name.replace(/\W/g, '')}`)
      const config = join(opts.dir, `region-${r}-${name.replace(/\W/g, '')}.yaml`)
      writeFileSync(config, stringify({ listen: '127.0.0.1:0', data, log: { level: 'warn' }, upstreams: [{ name: 'up', url: upstream.url, prefix: 'bench.up' }] }))
      settleDisk()
      const seconds = await timed(() => run(process.execPath, [...NODE_FLAGS, cli, 'mirror', '--config', config, '--list', list], { maxBuffer: 64 * 1024 * 1024 }))
      process.stdout.write(`${name.padEnd(10)} run ${r}: ${(opts.count * opts.layerSize / 1e6 / seconds).toFixed(0)} MB/s\n`)
      rmSync(data, { recursive: true, force: true })
    }
  }
}
