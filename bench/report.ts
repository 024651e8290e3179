// The benchmark's output: one Markdown report (printed and written as
// RESULTS.md) and the raw figures (results.json).
import type { ConsoleRun } from './console.ts'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { RegionRun } from './region.ts'
import type { AirgapRun } from './airgap.ts'
import type { PushRun } from './push.ts'
import type { ReplicationRun } from './replication.ts'
import type { CtrRun, WanRun } from './wan.ts'

export interface Check { readonly name: string, readonly value: number, readonly target: string, readonly pass: boolean }

export interface Results {
  date: string
  quick: boolean
  seconds?: number
  machine: { cores: number, memoryGiB: number }
  versions: { node: string, dockerRegistry: string, nginx: string }
  sizes: Record<string, number>
  scenarios: Record<string, unknown>
  /** scenario -> target -> bytes */
  peakRss: Record<string, Record<string, number>>
  checks: Check[]
}

const TARGETS = ['upstream', 'ferry', 'distribution', 'nginx']
type Row = Record<string, number | boolean | undefined>

function table (head: string[], rows: (string | number)[][]): string {
  const fmt = (v: string | number): string => typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 3 : 1)) : v
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map(r => `| ${r.map(fmt).join(' | ')} |`)].join('\n')
}

export function writeReport (r: Results, outDir: string): string {
  const s = r.scenarios as Record<string, Record<string, Row>>
  const mb = (r.sizes.big ?? 0) / 1024 / 1024
  const rows = (name: string, cols: (row: Row, target: string) => (string | number)[]): (string | number)[][] =>
    TARGETS.filter(t => s[name]?.[t] !== undefined).map(t => [t === 'upstream' ? 'direct (upstream)' : t, ...cols(s[name]![t]!, t)])
  const num = (v: unknown): number => typeof v === 'number' ? v : NaN
  const parts = [
    `# ferry benchmark${r.quick ? ' (quick)' : ''}`,
    '',
    `${r.date}; ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB; node ${r.versions.node}, docker-registry ${r.versions.dockerRegistry}, ${r.versions.nginx}; took ${r.seconds ?? '?'} s.`,
    `Produced by \`npm run bench${r.quick ? ' -- --quick' : ''}\`. Every process on 127.0.0.1; "direct" is pulling straight from the upstream registry.`,
    '',
    '## Targets',
    '',
    table(['check', 'value', 'target', 'result'], r.checks.map(c => [c.name, c.value, c.target, c.pass ? 'PASS' : 'FAIL'])),
    '',
    `## 1. One ${mb} MiB blob, one client`,
    '',
    'Before each cold pull: `sync`, the page cache dropped, the upstream\'s file read once. CPU: user + system of the target\'s processes from /proc, cold counted until they go quiet (distribution fetches the blob a second time for its store after the client has it).',
    '',
    table(['target', 'cold MB/s', 'warm MB/s', 'cold / direct', 'cold CPU s per GiB', 'warm CPU s per GiB', 'upstream fetches'], rows('1 one client', row => [num(row.coldMBps), num(row.warmMBps), num(row.coldMBps) / num(s['1 one client']?.upstream?.coldMBps), num(row.coldCpuPerGiB), num(row.warmCpuPerGiB), num(row.upstreamFetches)])),
    '',
    `## 2. The same size, 16 clients, cold`,
    '',
    table(['target', 'wall s', 'slowest first byte s', 'upstream fetches', 'complete', 'digests verified'], rows('2 16 clients cold', row => [num(row.wallMs) / 1000, num(row.ttfbMaxMs) / 1000, num(row.upstreamFetches), num(row.ok), num(row.verified)])),
    '',
    `## 3. 16 clients, warm`,
    '',
    table(['target', 'wall s', 'slowest first byte s', 'complete'], rows('3 16 clients warm', row => [num(row.wallMs) / 1000, num(row.ttfbMaxMs) / 1000, num(row.ok)])),
    '',
    `## 4. ${r.sizes.small} small images (manifest by tag, config, 4 KiB layer), 32 clients`,
    '',
    `Cold: one pass by a Node client pulling each image in turn (percentiles per pull). Warm: wrk for ${r.sizes.warmSeconds} s over 32 connections (percentiles per request), then an untimed pass that checks every digest.`,
    '',
    table(['target', 'cold pulls/s', 'cold p50 ms', 'cold p99 ms', 'warm pulls/s', 'warm p50 ms (request)', 'warm p99 ms (request)', 'failed', 'upstream requests while warm'],
      TARGETS.filter(t => s['4 small images cold']?.[t]).map(t => {
        const c = s['4 small images cold']![t]!; const w = s['4 small images warm']![t]!
        return [t === 'upstream' ? 'direct (upstream)' : t, num(c.rate), num(c.p50Ms), num(c.p99Ms), num(w.rate), num(w.p50Ms), num(w.p99Ms), num(c.failed) + num(w.failed), t === 'upstream' ? '-' : num(w.upstreamRequests)]
      })),
    '',
    ...(s['4 small images warm']?.['node limit'] !== undefined
      ? [`The Node.js limit (bench/node-limit.ts: a bare node:http server answering the same requests from memory, one process): ${num(s['4 small images warm']['node limit'].rate).toFixed(1)} pulls/s, p50 ${num(s['4 small images warm']['node limit'].p50Ms).toFixed(3)} ms, p99 ${num(s['4 small images warm']['node limit'].p99Ms).toFixed(3)} ms (per request), ${num(s['4 small images warm']['node limit'].failed)} failed.`, '']
      : []),
    `## 5. The same images by tag after their TTL (${r.sizes.tagTTLSeconds} s)`,
    '',
    table(['target', 'pulls/s', 'p99 ms', 'upstream requests per pull', 'failed'], rows('5 tag revalidation', row => [num(row.rate), num(row.p99Ms), num(row.upstreamRequestsPerPull), num(row.failed)])),
    '',
    '## 6. Peak RSS, MiB (each scenario, all processes of a target)',
    '',
    table(['scenario', ...TARGETS], Object.entries(r.peakRss).map(([name, p]) => [name, ...TARGETS.map(t => p[t] === undefined ? '-' : p[t]! / 1024 / 1024)])),
    '',
    ...memoryTierLine(r),
    '## 7. Scale: ferry, warm small-image pulls with few and with many cached blobs',
    '',
  ]
  const sc = s['7 scale'] as unknown as { few: Row, many: Row, startup: Row } | undefined
  if (sc !== undefined) {
    parts.push('wrk, 32 connections; percentiles per request.', '', table(['cached blobs', 'pulls/s', 'p50 ms', 'p99 ms'], [
      [num(sc.few.cachedBlobs), num(sc.few.rate), num(sc.few.p50Ms), num(sc.few.p99Ms)],
      [num(sc.many.cachedBlobs), num(sc.many.rate), num(sc.many.p50Ms), num(sc.many.p99Ms)],
    ]), '', `Restart with ${num(sc.many.cachedBlobs)} blobs: listening after ${(num(sc.startup.listeningMs) / 1000).toFixed(2)} s, all blobs indexed after ${(num(sc.startup.indexedMs) / 1000).toFixed(2)} s.`)
  }
  const region = r.scenarios['6 region'] as { one: RegionRun, two: RegionRun } | undefined
  if (region !== undefined) {
    const row = (x: RegionRun): (string | number)[] => [
      x.proxies === 1 ? 'one proxy' : 'two proxies',
      x.herdCold.wallMs / 1000, x.herdCold.ttfbMaxMs / 1000, x.herdCold.upstreamFetches, x.herdCold.verified,
      x.herdWarm.wallMs / 1000,
      x.smallCold.rate, x.smallCold.p99Ms, x.smallWarm.rate, x.smallWarm.p99Ms, x.smallCold.failed + x.smallWarm.failed,
      x.peakRss / 1024 / 1024,
    ]
    parts.push('', `## 8. A region: one proxy against two (Redis state and leases, S3 store (s3rver), an L1 disk each)`, '',
      'Clients split evenly over the proxies, as a load balancer would. Herd: 16 clients, one cold ' + `${mb} MiB blob, then warm (L1). Small images: ${r.sizes.small} fresh images, 32 clients, cold then 3 warm passes; percentiles are the worse proxy's.`, '',
      table(['region', 'cold wall s', 'cold slowest first byte s', 'upstream fetches', 'digests verified', 'warm wall s', 'small cold pulls/s', 'cold p99 ms', 'small warm pulls/s', 'warm p99 ms', 'failed', 'peak RSS MiB (all proxies)'],
        [row(region.one), row(region.two)]),
      '', `Two proxies / one: herd cold wall ${(region.two.herdCold.wallMs / region.one.herdCold.wallMs).toFixed(2)}×, herd warm wall ${(region.two.herdWarm.wallMs / region.one.herdWarm.wallMs).toFixed(2)}×, small cold rate ${(region.two.smallCold.rate / region.one.smallCold.rate).toFixed(2)}×, small warm rate ${(region.two.smallWarm.rate / region.one.smallWarm.rate).toFixed(2)}×.`)
  }
  const repl = r.scenarios['9 replication'] as ReplicationRun | undefined
  if (repl !== undefined) {
    parts.push('', '## 9. Replication: region A to region B (`ferry replicate`, both ferry, embedded state, fs stores)', '',
      `${repl.images - 1} small images and one ${Math.round(repl.bigBytes / 1024 / 1024)} MiB blob (as an image) cached in A, then the replicator started; time until B's lag is 0.`, '',
      table(['images', 'big blob MiB', 'seconds', 'images/s', 'MB/s', 'largest lag, events', 'replicator peak RSS MiB', 'B peak RSS MiB', 'verified at B', 'dead letters'],
        [[repl.images, repl.bigBytes / 1024 / 1024, repl.seconds, repl.imagesPerSecond, repl.megabytesPerSecond, repl.maxLagEvents, repl.replicatorPeakRss / 1024 / 1024, repl.peerPeakRss / 1024 / 1024, `${repl.imagesVerified + Number(repl.bigVerified)}/${repl.images}`, repl.deadLetters]]))
  }
  const push = r.scenarios['10 push'] as Record<'ferry' | 'distribution', PushRun> | undefined
  if (push !== undefined) {
    const f = push.ferry; const d = push.distribution
    parts.push('', '## 10. Pushes: ferry (a hosted namespace, Basic auth) against distribution (docker-registry)', '',
      `${f.images} small images (blob uploads and a manifest each, 16 images at a time), then one ${Math.round(f.bigBytes / 1024 / 1024)} MiB layer streamed as docker and skopeo push it (POST, one PATCH, PUT). Every image is pulled back and checked after the timed runs.`, '',
      table(['target', 'small images/s', 'big layer MB/s', 'peak RSS MiB', 'verified'], [
        ['ferry', f.imagesPerSecond, f.bigMBps, f.peakRss / 1024 / 1024, `${f.imagesVerified + Number(f.bigVerified)}/${f.images + 1}`],
        ['distribution', d.imagesPerSecond, d.bigMBps, d.peakRss / 1024 / 1024, `${d.imagesVerified + Number(d.bigVerified)}/${d.images + 1}`],
      ]), '', `ferry / distribution: small images ${(f.imagesPerSecond / d.imagesPerSecond).toFixed(2)}×, big layer ${(f.bigMBps / d.bigMBps).toFixed(2)}×.`)
  }
  const airgap = r.scenarios['11 air-gap'] as AirgapRun | undefined
  if (airgap !== undefined) {
    const a = airgap
    parts.push('', '## 11. Air-gap: ferry export and import against skopeo copy to and from an oci: directory', '',
      `${a.images} images of one ${Math.round(a.bytes / a.images / 1024 / 1024)} MiB random layer each. ferry: \`ferry export\` from a cold connected region (it mirrors first), \`ferry import\` into a region with no upstream. skopeo: \`skopeo copy\` image by image from the upstream to an \`oci:\` directory, then from it into a plain docker-registry. MB/s is the images' bytes over each whole command's wall time. The second ferry row exports the same images again from the region the first export filled: what writing the bundle costs alone.`, '',
      table(['tool', 'export MB/s', 'import MB/s'], [
        ['ferry', a.ferryExportMBps, a.ferryImportMBps],
        ...(a.ferryWarmExportMBps === undefined ? [] : [['ferry, from a warm region', a.ferryWarmExportMBps, '-']]),
        ['skopeo', a.skopeoExportMBps, a.skopeoImportMBps],
      ]), '', `ferry / skopeo: export ${(a.ferryExportMBps / a.skopeoExportMBps).toFixed(2)}×, import ${(a.ferryImportMBps / a.skopeoImportMBps).toFixed(2)}×; ${a.verified}/${a.images} imported images read back by tag with their digest.`)
  }
  const wan = r.scenarios['12 WAN'] as WanRun | undefined
  if (wan !== undefined) {
    parts.push('', `## 12. WAN: the upstream behind a ${wan.rttMs} ms, ${wan.mbitPerSecond} Mbit/s link, ${wan.nodes} nodes pulling ${wan.images} images at once`, '',
      `${wan.images} images, ${wan.layers} layers, ${(wan.uniqueBytes / 1024 ** 3).toFixed(2)} GiB of unique layers (fixed-seed sizes, 1 KiB to 300 MiB, four shared bases). The link (bench/shaped-link.ts) is shared by all connections through it, each way; only the path to the upstream is shaped. Each node pulls the images in turn, each image's blobs three at a time; warm is the same again.`, '',
      table(['target', 'cold wall s', 'fastest node s', 'slowest node s', 'GiB over the link', 'warm wall s', 'warm slowest node s', 'failed', 'verified', 'peak RSS MiB'],
        TARGETS.filter(t => wan.targets[t] !== undefined).map(t => {
          const w = wan.targets[t]!
          return [t === 'upstream' ? 'direct (upstream)' : t, w.coldWallS, w.coldFastestNodeS, w.coldSlowestNodeS, w.upstreamBytes / 1024 ** 3, w.warmWallS, w.warmSlowestNodeS, w.failed, `${w.verified}/${wan.images}`, t === 'upstream' ? '-' : w.peakRss / 1024 / 1024]
        })))
  }
  const ctr = r.scenarios['13 ctr'] as CtrRun | undefined
  if (ctr !== undefined) {
    parts.push('', `## 13. A real client: \`ctr images pull\` of one image of ${ctr.layers} layers of ${Math.round(ctr.layerBytes / 1024 / 1024)} MiB`, '',
      `containerd through a hosts.toml mirror to each target, unpacked into the native snapshotter; a fresh containerd for each pull, cold then warm; ${ctr.rounds ?? 1} round${(ctr.rounds ?? 1) > 1 ? 's of every target in turn, medians' : ''}. Proxy CPU: user + system seconds of the proxy's processes during the pull (containerd itself spends about 2.2 s on each).`, '',
      table(['target', 'cold s', 'warm s', 'proxy CPU s cold', 'proxy CPU s warm'], TARGETS.filter(t => ctr.targets[t] !== undefined).map(t => {
        const c = ctr.targets[t]!
        return [t === 'upstream' ? 'direct (upstream)' : t, c.coldS, c.warmS, c.coldProxyCpuS ?? '-', c.warmProxyCpuS ?? '-']
      })))
  }
  const ui = r.scenarios['14 console'] as ConsoleRun | undefined
  if (ui !== undefined) {
    parts.push('', `## 14. The console with ${ui.repositories} repositories`, '',
      'chromium (headless, puppeteer-core) loads /ui/ on a ferry whose state holds that many hosted repositories; medians of 5 loads, each in a fresh browser context.', '',
      table(['overview first contentful paint ms', 'overview figures on the page ms', 'repositories page (50 rows) from the overview ms', 'GET /_ferry/api/v1/repositories?n=50 ms'],
        [[ui.overviewPaintMs, ui.overviewReadyMs, ui.repositoriesReadyMs, ui.apiRepositoriesMs]]))
  }
  const text = parts.join('\n') + '\n'
  writeFileSync(join(outDir, 'RESULTS.md'), text)
  writeFileSync(join(outDir, 'results.json'), JSON.stringify(r, null, 2) + '\n')
  return text
}

/** What ferry's in-memory tiers held at the end of the WAN scenario, its worst for RSS: a sentence under the RSS table. */
function memoryTierLine (r: Results): string[] {
  const held = (r.scenarios['12 WAN'] as WanRun | undefined)?.targets.ferry?.memoryTierBytes
  return held === undefined ? [] : [`Of ferry's peak in scenario 12, its in-memory tiers (small blobs and manifests, \`ferry_memory_tier_bytes\`) held ${(held / 1024 / 1024).toFixed(1)} MiB at the end.`, '']
}
