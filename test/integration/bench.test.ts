// The benchmark must never rot: its quick mode runs every scenario against
// every target and produces figures. How fast is bench/'s business, not this
// test's.
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'

import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { ROOT } from '../helpers/ferry.ts'
import { requireBinary } from '../helpers/registry.ts'
import { scratchDir } from '../helpers/procs.ts'

const run = promisify(execFile)

t.test('npm run bench -- --quick runs every scenario and reports every figure', async t => {
  requireBinary('nginx', 'nginx')
  requireBinary('curl', 'curl')
  requireBinary('wrk', 'wrk')
  requireBinary('redis-server', 'redis-server')
  requireBinary('containerd', 'containerd')
  const out = scratchDir('ferry-bench-test-')
  const { stdout } = await run(process.execPath, [join(ROOT, 'bench', 'run.ts'), '--quick', '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024, timeout: 360_000 })
  t.match(stdout, /# ferry benchmark \(quick\)/)
  const r = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as {
    scenarios: Record<string, Record<string, Record<string, number>>>
    peakRss: Record<string, Record<string, number>>
    checks: { name: string, value: number, pass: boolean }[]
  }
  const targets = ['upstream', 'ferry', 'distribution', 'nginx']
  for (const scenario of ['1 one client', '2 16 clients cold', '3 16 clients warm', '4 small images cold', '4 small images warm', '5 tag revalidation']) {
    for (const target of targets) {
      const row = r.scenarios[scenario]?.[target]
      t.ok(row !== undefined, `${scenario}: ${target} ran`)
      const figures = Object.values(row ?? {}).filter(v => typeof v === 'number')
      t.ok(figures.length > 0 && figures.every(v => Number.isFinite(v)), `${scenario}: ${target} has figures`)
      t.ok((r.peakRss[scenario]?.[target] ?? 0) > 0, `${scenario}: ${target} peak RSS measured`)
    }
  }
  // every target got every byte in the timed runs, and ferry's bytes verified
  for (const target of targets) t.equal(r.scenarios['2 16 clients cold']![target]!.ok, 16, `${target}: 16 complete cold transfers`)
  t.equal(r.scenarios['2 16 clients cold']!.ferry!.verified, 16)
  t.equal(r.scenarios['4 small images warm']!.ferry!.failed, 0)
  const scale = r.scenarios['7 scale'] as unknown as { few: Record<string, number>, many: Record<string, number> }
  t.ok(scale.many.cachedBlobs > scale.few.cachedBlobs, 'the scale run grew the cache')
  t.ok(scale.few.rate > 0 && scale.many.rate > 0)
  const region = r.scenarios['6 region'] as unknown as Record<'one' | 'two', { proxies: number, herdCold: Record<string, number>, smallWarm: Record<string, number>, peakRss: number }>
  for (const size of ['one', 'two'] as const) {
    t.equal(region[size].herdCold.ok, 16, `region of ${size}: 16 complete cold transfers`)
    t.equal(region[size].herdCold.verified, 16, `region of ${size}: digests verified`)
    t.equal(region[size].herdCold.upstreamFetches, 1, `region of ${size}: one upstream fetch`)
    t.equal(region[size].smallWarm.failed, 0)
    t.ok(region[size].peakRss > 0)
  }
  t.match(readFileSync(join(out, 'RESULTS.md'), 'utf8'), /## 8\. A region: one proxy against two/)
  const repl = r.scenarios['9 replication'] as unknown as { images: number, imagesVerified: number, bigVerified: boolean, deadLetters: number, seconds: number }
  t.equal(repl.imagesVerified, repl.images - 1, 'replication: every small image pulled from the peer')
  t.equal(repl.bigVerified, true, 'replication: the big blob verified at the peer')
  t.equal(repl.deadLetters, 0)
  t.ok(repl.seconds > 0)
  const push = r.scenarios['10 push'] as unknown as Record<'ferry' | 'distribution', { images: number, imagesVerified: number, bigVerified: boolean, imagesPerSecond: number, bigMBps: number }>
  for (const target of ['ferry', 'distribution'] as const) {
    t.equal(push[target].imagesVerified, push[target].images, `push: every small image pulls back from ${target}`)
    t.equal(push[target].bigVerified, true, `push: the big layer verified at ${target}`)
    t.ok(push[target].imagesPerSecond > 0 && push[target].bigMBps > 0, `push: ${target} has figures`)
  }
  const airgap = r.scenarios['11 air-gap'] as unknown as Record<string, number>
  for (const k of ['ferryExportMBps', 'skopeoExportMBps', 'ferryImportMBps', 'skopeoImportMBps']) t.ok(airgap[k]! > 0, `air-gap: ${k} measured`)
  t.equal(airgap.verified, airgap.images, 'air-gap: every imported image reads back')
  t.ok(r.scenarios['1 one client']!.ferry!.coldCpuPerGiB! > 0, 'cold CPU per GiB measured for ferry')
  t.equal(r.scenarios['1 one client']!.ferry!.upstreamFetches, 1, 'one client, cold: ferry fetched the blob once')
  t.ok(r.scenarios['4 small images warm']!['node limit']!.rate! > 0, 'the Node limit measured')
  const wan = r.scenarios['12 WAN'] as unknown as { images: number, uniqueBytes: number, targets: Record<string, { coldWallS: number, warmWallS: number, upstreamBytes: number, failed: number, verified: number }> }
  for (const target of targets) {
    const row = wan.targets[target]!
    t.ok(row.coldWallS > 0 && row.warmWallS > 0, `WAN: ${target} ran cold and warm`)
    t.equal(row.failed, 0, `WAN: ${target} served every pull`)
    t.equal(row.verified, wan.images, `WAN: ${target}'s largest layers verified`)
  }
  t.ok(wan.targets.upstream!.upstreamBytes > wan.uniqueBytes, 'WAN: the nodes pulling direct moved more than the unique bytes over the link')
  t.ok(wan.targets.ferry!.upstreamBytes >= wan.uniqueBytes && wan.targets.ferry!.upstreamBytes < 1.01 * wan.uniqueBytes, 'WAN: ferry fetched each layer over the link once')
  const ctr = r.scenarios['13 ctr'] as unknown as { targets: Record<string, { coldS: number, warmS: number }> }
  for (const target of targets) t.ok(ctr.targets[target]!.coldS > 0 && ctr.targets[target]!.warmS > 0, `ctr images pull through ${target}, cold and warm`)
  const ui = r.scenarios['14 console'] as unknown as { repositories: number, overviewPaintMs: number, overviewReadyMs: number, apiRepositoriesMs: number }
  t.ok(ui.repositories === 1000 && ui.overviewPaintMs > 0 && ui.overviewReadyMs > 0 && ui.apiRepositoriesMs > 0, 'the console loaded with 1,000 repositories, and its times measured')
  t.equal(r.checks.length, 36, 'every target is checked')
  t.ok(r.checks.every(c => Number.isFinite(c.value)), 'every check has a value')
  t.match(readFileSync(join(out, 'RESULTS.md'), 'utf8'), /## Targets/)
})
