// Scenarios 12 and 13: the bench as the real world looks.
//
// 12, WAN: the upstream behind a shaped link (shaped-link.ts: 30 ms round
// trip, 1 Gbit/s shared, as from a cluster to a hub), and only that path
// shaped. 20 images of 5 to 12 layers (sizes drawn with a fixed seed, most
// small, a few up to 300 MiB, some base layers shared), pulled cold by 8
// nodes at once, then warm. Each node pulls the images in turn, each
// image's manifest and then its blobs three at a time (containerd's default
// max_concurrent_downloads). Direct: every node through the link.
//
// 13, a real client: `ctr images pull` (containerd unpacks into the native
// snapshotter; it fetches layers in parallel) of one image of six 48 MiB
// layers through each target by a hosts.toml mirror, cold and warm (a fresh
// containerd for each pull).
import { execFile, execFileSync } from 'node:child_process'
import { createReadStream, createWriteStream, mkdirSync, rmSync, statSync } from 'node:fs'
import { once } from 'node:events'
import { createHash } from 'node:crypto'
import { dirname, join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import { pack } from 'tar-stream'
import { startContainerd } from '../test/helpers/containerd.ts'
import { blob, OCI_CONFIG, OCI_MANIFEST, pushBlob, pushManifest } from '../test/helpers/images.ts'
import { requireBinary, startRegistry, type Registry } from '../test/helpers/registry.ts'
import { median, verifyBlob } from './load.ts'
import { pushFile, randomFile } from './seed.ts'
import { startShapedLink } from './shaped-link.ts'
import { traced, type TraceMode } from './trace.ts'
import { cpuSeconds, peakRss, resetPeak, startDistributionProxy, startFloorProxy, startFerryTarget, startNginx, type Target } from './targets.ts'

const run = promisify(execFile)
/** The registry host scenario 13's image is named by; containerd reaches it through each target as a mirror. */
const CTR_REGISTRY = 'registry.bench'
const MiB = 1024 * 1024
const OCI_TAR_LAYER = 'application/vnd.oci.image.layer.v1.tar'

export interface WanRow {
  readonly coldWallS: number
  readonly coldFastestNodeS: number
  readonly coldSlowestNodeS: number
  readonly upstreamBytes: number
  readonly warmWallS: number
  readonly warmSlowestNodeS: number
  readonly failed: number
  /** Each image's largest layer, read back from the target and hashed. */
  readonly verified: number
  readonly peakRss: number
  /** ferry: bytes its in-memory tiers (small blobs, manifests) held at the end (ferry_memory_tier_bytes). */
  readonly memoryTierBytes?: number
}

export interface WanRun {
  readonly images: number
  readonly layers: number
  readonly uniqueBytes: number
  readonly nodes: number
  readonly rttMs: number
  readonly mbitPerSecond: number
  readonly targets: Record<string, WanRow>
}

export interface CtrRun {
  readonly layers: number
  readonly layerBytes: number
  /** Rounds of every target in turn; each figure is the median over them. */
  readonly rounds?: number
  /** proxyCpuS: user + system seconds of the proxy's processes during the pull (none for direct). */
  readonly targets: Record<string, { coldS: number, warmS: number, coldProxyCpuS?: number, warmProxyCpuS?: number }>
}

interface WanImage { repo: string, tag: string, manifestDigest: string, blobs: { digest: string, size: number }[] }

/** A fixed-seed generator (mulberry32): the same sizes every run. */
function seeded (seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6D2B79F5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Layer sizes: log-normal around 1 MiB (σ 2.2), between 1 KiB and `max`;
 * four base images of one or two layers, each image built on one of them.
 */
function plan (count: number, max: number): { bases: number[][], images: { base: number, own: number[] }[] } {
  const r = seeded(5)
  const normal = (): number => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r())
  const size = (): number => Math.min(max, Math.max(1024, Math.round(MiB * Math.exp(2.2 * normal()))))
  const bases = [[size(), size()], [size()], [size(), size()], [size()]]
  const images = Array.from({ length: count }, () => {
    const layers = 5 + Math.floor(r() * 8)
    const base = Math.floor(r() * bases.length)
    return { base, own: Array.from({ length: layers - bases[base]!.length }, size) }
  })
  return { bases, images }
}

async function seedWan (upstream: Registry, dir: string, count: number, max: number): Promise<{ images: WanImage[], uniqueBytes: number, layers: number }> {
  const { bases, images: planned } = plan(count, max)
  let uniqueBytes = 0
  let layers = 0
  const file = join(dir, 'layer.bin')
  const made = new Map<string, string>() // "base i j" -> digest
  const layerOf = async (key: string, size: number, repo: string): Promise<string> => {
    let digest = made.get(key)
    if (digest === undefined) {
      digest = await randomFile(file, size)
      made.set(key, digest)
      uniqueBytes += size
      await pushFile(upstream.url, repo, file, digest)
      rmSync(file)
      return digest
    }
    // a shared base layer: mounted, as a registry holds it once
    const res = await fetch(`${upstream.url}/v2/${repo}/blobs/uploads/?mount=${digest}&from=${made.get(`${key} repo`)!}`, { method: 'POST' })
    await res.arrayBuffer()
    if (res.status !== 201) throw new Error(`mount of ${digest} into ${repo}: ${res.status}`)
    return digest
  }
  const images: WanImage[] = []
  for (const [i, p] of planned.entries()) {
    const repo = `wan/img-${i}`
    const layerList: { digest: string, size: number }[] = []
    for (const [j, size] of bases[p.base]!.entries()) {
      const key = `base ${p.base} ${j}`
      const first = !made.has(key)
      layerList.push({ digest: await layerOf(key, size, repo), size })
      if (first) made.set(`${key} repo`, repo)
    }
    for (const [j, size] of p.own.entries()) layerList.push({ digest: await layerOf(`img ${i} ${j}`, size, repo), size })
    layers += layerList.length
    const config = blob(OCI_CONFIG, Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layerList.map(l => l.digest) }, n: i })))
    await pushBlob(upstream.url, repo, config)
    const manifest = blob(OCI_MANIFEST, Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.bytes.length },
      layers: layerList.map(l => ({ mediaType: OCI_TAR_LAYER, digest: l.digest, size: l.size })),
    })))
    await pushManifest(upstream.url, repo, 'v1', manifest)
    images.push({ repo, tag: 'v1', manifestDigest: manifest.digest, blobs: [{ digest: config.digest, size: config.bytes.length }, ...layerList] })
  }
  return { images, uniqueBytes, layers }
}

/** One of the compared targets in front of `upstream` (the upstream itself for "upstream": pulling direct). */
async function startTarget (name: string, dir: string, upstream: { url: string, host: string }, ferryFlags: string[] = []): Promise<Target> {
  // containerd names the registry CTR_REGISTRY (?ns=): ferry answers only for registries it mirrors
  if (name === 'ferry') return await startFerryTarget(dir, upstream.url, '1h', {}, ferryFlags, { aliases: [CTR_REGISTRY] })
  if (name === 'distribution') return await startDistributionProxy(dir, upstream.url)
  if (name === 'nginx') return await startNginx(dir, upstream.host, 3600)
  return { name: 'upstream', url: upstream.url, pids: () => [], stop: async () => {} }
}

/** One blob by curl, counted and thrown away; true when it came whole with 200. */
function curlBlob (url: string, size: number): Promise<boolean> {
  return new Promise(resolve => {
    execFile('curl', ['-s', '-o', '/dev/null', '--max-time', '900', '-w', '%{http_code} %{size_download}', url], (err, stdout) => {
      const [code, bytes] = stdout.trim().split(' ')
      resolve(err === null && code === '200' && Number(bytes) === size)
    })
  })
}

/** A node pulling every image in turn: manifest by tag, then the blobs three at a time. Resolves with its seconds and failures. */
async function node (base: string, images: readonly WanImage[]): Promise<{ seconds: number, failed: number }> {
  const started = performance.now()
  let failed = 0
  for (const img of images) {
    const res = await fetch(`${base}/v2/${img.repo}/manifests/${img.tag}`, { headers: { accept: OCI_MANIFEST } })
    const body = Buffer.from(await res.arrayBuffer())
    if (res.status !== 200 || 'sha256:' + createHash('sha256').update(body).digest('hex') !== img.manifestDigest) failed++
    const queue = [...img.blobs]
    await Promise.all(Array.from({ length: 3 }, async () => {
      for (let b = queue.shift(); b !== undefined; b = queue.shift()) {
        if (!await curlBlob(`${base}/v2/${img.repo}/blobs/${b.digest}`, b.size)) failed++
      }
    }))
  }
  return { seconds: (performance.now() - started) / 1000, failed }
}

async function fleet (base: string, images: readonly WanImage[], nodes: number): Promise<{ wallS: number, fastestS: number, slowestS: number, failed: number }> {
  const started = performance.now()
  const runs = await Promise.all(Array.from({ length: nodes }, () => node(base, images)))
  const secs = runs.map(r => r.seconds)
  return { wallS: (performance.now() - started) / 1000, fastestS: Math.min(...secs), slowestS: Math.max(...secs), failed: runs.reduce((n, r) => n + r.failed, 0) }
}

export async function wanScenario (o: { dir: string, quick: boolean, targets?: readonly string[], runs?: number, stops: (() => Promise<void>)[], log: (m: string) => void }): Promise<WanRun> {
  mkdirSync(o.dir, { recursive: true })
  const count = o.quick ? 4 : 20
  const nodes = o.quick ? 4 : 8
  const rttMs = 30
  const mbitPerSecond = 1000
  const upstream = await startRegistry({ dir: join(o.dir, 'upstream') })
  o.stops.push(() => upstream.stop())
  const { images, uniqueBytes, layers } = await seedWan(upstream, o.dir, count, o.quick ? 16 * MiB : 300 * MiB)
  o.log(`12. WAN: ${count} images, ${layers} layers, ${(uniqueBytes / 1024 ** 3).toFixed(2)} GiB unique, ${nodes} nodes, ${rttMs} ms, ${mbitPerSecond} Mbit/s`)
  const targets: Record<string, WanRow> = {}
  for (let round = 0; round < (o.runs ?? 1); round++) for (const name of o.targets ?? ['upstream', 'ferry', 'distribution', 'nginx']) {
    const link = await startShapedLink({ host: '127.0.0.1', port: upstream.port }, { rttMs, bitsPerSecond: mbitPerSecond * 1e6 })
    const target = await startTarget(name, join(o.dir, name), link)
    try {
      const pids = (): number[] => target.pids()
      resetPeak(pids())
      const before = link.bytesDown()
      const cold = await fleet(target.url, images, nodes)
      const upstreamBytes = link.bytesDown() - before
      const warm = await fleet(target.url, images, nodes)
      let verified = 0
      for (const img of images) {
        const largest = img.blobs.slice(1).reduce((a, b) => (b.size > a.size ? b : a))
        verified += await verifyBlob(`${target.url}/v2/${img.repo}/blobs/${largest.digest}`, 1, largest.digest)
      }
      targets[name] = {
        coldWallS: cold.wallS, coldFastestNodeS: cold.fastestS, coldSlowestNodeS: cold.slowestS, upstreamBytes,
        warmWallS: warm.wallS, warmSlowestNodeS: warm.slowestS, failed: cold.failed + warm.failed, verified, peakRss: peakRss(pids()),
        ...(name === 'ferry' ? { memoryTierBytes: await memoryTierBytes(target.url) } : {}),
      }
      const tier = targets[name].memoryTierBytes
      o.log(`    ${name}: cold ${cold.wallS.toFixed(1)} s, ${(upstreamBytes / 1024 ** 3).toFixed(2)} GiB over the link; warm ${warm.wallS.toFixed(1)} s; peak RSS ${(targets[name].peakRss / 1024 ** 2).toFixed(0)} MiB${tier === undefined ? '' : `, of it the memory tier ${(tier / 1024 ** 2).toFixed(1)} MiB`}`)
    } finally {
      await target.stop()
      await link.close()
      if (name !== 'upstream') rmSync(join(o.dir, name), { recursive: true, force: true }) // a proxy's cache; the upstream's data is in o.dir/upstream
    }
  }
  return { images: count, layers, uniqueBytes, nodes, rttMs, mbitPerSecond, targets }
}

/** The sum of ferry_memory_tier_bytes on a ferry's /metrics. */
async function memoryTierBytes (url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  let sum = 0
  for (const m of text.matchAll(/^ferry_memory_tier_bytes\{[^}]*\} (\S+)$/gm)) sum += Number(m[1])
  return sum
}

/** A tar holding one file of `size` random bytes, and its digest (an uncompressed layer: its diff_id is its digest). */
async function tarLayer (path: string, size: number): Promise<string> {
  const data = `${path}.data`
  await randomFile(data, size)
  const tar = pack()
  const out = createWriteStream(path)
  const hash = createHash('sha256')
  tar.on('data', (c: unknown) => { hash.update(c as Buffer) })
  tar.pipe(out)
  const done = once(out, 'finish')
  await pipeline(createReadStream(data), tar.entry({ name: 'data.bin', size, mtime: new Date(0) }))
  tar.finalize()
  await done
  rmSync(data)
  return 'sha256:' + hash.digest('hex')
}

/**
 * `runs` > 1 (the standalone `--ctr` mode) pulls through every target in
 * turn, that many rounds, and gives each target's median: one round swings
 * by a third on this VM.
 */
export async function ctrScenario (o: { dir: string, quick: boolean, runs?: number, trace?: TraceMode, floor?: boolean, stops: (() => Promise<void>)[], log: (m: string) => void }): Promise<CtrRun> {
  requireBinary('ctr', 'containerd')
  mkdirSync(o.dir, { recursive: true })
  const layerCount = 6
  const layerBytes = o.quick ? 8 * MiB : 48 * MiB
  const upstream = await startRegistry({ dir: join(o.dir, 'upstream') })
  o.stops.push(() => upstream.stop())
  const layers: { digest: string, size: number }[] = []
  for (let i = 0; i < layerCount; i++) {
    const file = join(o.dir, `layer-${i}.tar`)
    const digest = await tarLayer(file, layerBytes)
    layers.push({ digest, size: statSync(file).size })
    await pushFile(upstream.url, 'ctr/app', file, digest)
    rmSync(file)
  }
  const config = blob(OCI_CONFIG, Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map(l => l.digest) } })))
  await pushBlob(upstream.url, 'ctr/app', config)
  const manifest = blob(OCI_MANIFEST, Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.bytes.length },
    layers: layers.map(l => ({ mediaType: OCI_TAR_LAYER, digest: l.digest, size: l.size })),
  })))
  await pushManifest(upstream.url, 'ctr/app', 'v1', manifest)
  const rounds: Record<string, { coldS: number, warmS: number, coldProxyCpuS: number, warmProxyCpuS: number }[]> = {}
  for (let round = 0; round < (o.runs ?? 1); round++) {
    for (const name of ['upstream', 'ferry', 'distribution', 'nginx', ...(o.floor === true ? ['node pipe', 'node hash+file'] : [])]) {
      const target = name.startsWith('node ')
        ? await startFloorProxy(name.slice(5), upstream.url, join(o.dir, name))
        : await startTarget(name, join(o.dir, name), upstream, o.trace === 'perf' ? ['--perf-basic-prof'] : [])
      try {
        const pull = async (label: string): Promise<{ s: number, proxyCpuS: number, cpu: string }> => {
          // what the pull before wrote (containerd's content and snapshots, a proxy's cache) is written back now, not during this one
          execFileSync('sync')
          const containerd = await startContainerd({ [CTR_REGISTRY]: [target.url] })
          try {
            const cpu = (): number[] => [cpuSeconds(target.pids()), cpuSeconds([containerd.pid]), cpuSeconds([upstream.proc.child.pid!])]
            let before = cpu()
            let started = performance.now()
            await traced(o.trace, o.dir, name === 'ferry' ? target.pids() : [], `ferry, ctr images pull ${label}`, async () => {
              before = cpu()
              started = performance.now()
              await run('ctr', ['--address', containerd.sock, 'images', 'pull', '--hosts-dir', containerd.hosts, '--snapshotter', 'native', '--platform', 'linux/amd64', `${CTR_REGISTRY}/ctr/app:v1`], { maxBuffer: 64 * MiB })
            })
            const s = (performance.now() - started) / 1000
            const spentS = cpu().map((c, i) => c - before[i]!)
            const spent = spentS.map(c => c.toFixed(2))
            return { s, proxyCpuS: spentS[0]!, cpu: `CPU s: ${name === 'upstream' ? '' : `proxy ${spent[0]}, `}containerd ${spent[1]}, upstream ${spent[2]}` }
          } finally {
            await containerd.stop()
            rmSync(dirname(containerd.sock), { recursive: true, force: true }) // its content and snapshots: twice the image
          }
        }
        const cold = await pull('cold')
        const warm = await pull('warm')
        const coldS = cold.s
        const warmS = warm.s
        o.log(`    ${name}: ctr images pull cold ${coldS.toFixed(2)} s (${cold.cpu}), warm ${warmS.toFixed(2)} s (${warm.cpu})`)
        ;(rounds[name] ??= []).push({ coldS, warmS, coldProxyCpuS: cold.proxyCpuS, warmProxyCpuS: warm.proxyCpuS })
      } finally {
        await target.stop()
        if (name !== 'upstream') rmSync(join(o.dir, name), { recursive: true, force: true }) // a proxy's cache; the upstream's data is in o.dir/upstream
      }
    }
  }
  const targets: CtrRun['targets'] = {}
  for (const [name, rs] of Object.entries(rounds)) {
    targets[name] = { coldS: median(rs.map(r => r.coldS)), warmS: median(rs.map(r => r.warmS)), ...(name === 'upstream' ? {} : { coldProxyCpuS: median(rs.map(r => r.coldProxyCpuS)), warmProxyCpuS: median(rs.map(r => r.warmProxyCpuS)) }) }
  }
  return { layers: layerCount, layerBytes, rounds: o.runs ?? 1, targets }
}
