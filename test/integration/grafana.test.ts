// The Grafana dashboard in deploy/grafana/ asks only for what ferry
// exports: every metric in every panel's query is one a running ferry (or
// `ferry replicate`) lists on /metrics, and every label a query groups by is
// one its samples carry. Checked against real processes after real pulls,
// through an upstream that reports its rate limit as Docker Hub does.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { CLI, NODE_FLAGS, ROOT, startFerry, type Ferry } from '../helpers/ferry.ts'
import { get } from '../helpers/http.ts'
import { image, OCI_MANIFEST, pushImage } from '../helpers/images.ts'
import { freePort, startProc, type Proc } from '../helpers/procs.ts'
import { startRateReporting, type RateReporting } from '../helpers/rate-reporting.ts'
import { startRegistry, type Registry } from '../helpers/registry.ts'

interface Panel { id: number, type: string, title: string, gridPos: { x: number, y: number, w: number, h: number }, targets: { expr: string, refId: string, datasource: { uid: string } }[] }
const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy', 'grafana', 'ferry.json'), 'utf8')) as { uid: string, panels: Panel[], templating: { list: { name: string }[] } }

let upstream: Registry
let reporting: RateReporting
let ferry: Ferry
let replicator: Proc
let metricsPort: number

t.before(async () => {
  upstream = await startRegistry()
  const img = await image()
  await pushImage(upstream.url, 'team/app', 'v1', img)
  reporting = await startRateReporting(upstream.url, 100, 21600)
  metricsPort = await freePort()
  ferry = await startFerry({
    config: {
      upstreams: [{ name: 'hub', url: reporting.url, default: true }],
      replication: { peers: [{ name: 'dr', url: 'http://127.0.0.1:9' }], metricsListen: `127.0.0.1:${metricsPort}` },
    },
  })
  for (let i = 0; i < 2; i++) {
    await get(`${ferry.url}/v2/team/app/manifests/v1`, { accept: OCI_MANIFEST })
    for (const b of [img.config, ...img.layers]) await get(`${ferry.url}/v2/team/app/blobs/${b.digest}`)
  }
  replicator = startProc(process.execPath, [...NODE_FLAGS, CLI, 'replicate', '--config', ferry.configPath])
  await replicator.waitFor(/"msg":"replicating"/, 30_000)
})
t.teardown(async () => { await replicator?.stop(); await ferry?.stop(); await reporting?.stop(); await upstream?.stop() })

/** Metric names (from # TYPE lines) and each metric's label names (from its samples). */
function parse (text: string): { names: Set<string>, labels: Map<string, Set<string>> } {
  const names = new Set<string>()
  const labels = new Map<string, Set<string>>()
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) /.exec(line)
    if (type !== null) { names.add(type[1]!); continue }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}/.exec(line)
    if (sample === null) continue
    const base = sample[1]!.replace(/_(bucket|count|sum)$/, '')
    for (const m of sample[2]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) {
      let set = labels.get(base)
      if (set === undefined) { set = new Set(); labels.set(base, set) }
      set.add(m[1]!)
    }
  }
  return { names, labels }
}

t.test('the dashboard is well formed', async t => {
  t.equal(dashboard.uid, 'ferry-overview')
  t.ok(dashboard.templating.list.some(v => v.name === 'datasource'), 'the data source is a variable (any Prometheus)')
  t.ok(dashboard.panels.length >= 10)
  t.equal(new Set(dashboard.panels.map(p => p.id)).size, dashboard.panels.length, 'panel ids are unique')
  for (const p of dashboard.panels) {
    t.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title}: within the 24 columns`)
    t.ok(p.targets.length > 0, `${p.title}: has a query`)
    for (const q of p.targets) {
      t.equal(q.datasource.uid, '${datasource}', `${p.title}: uses the chosen data source`)
      let depth = 0
      for (const ch of q.expr) { if (ch === '(') depth++; if (ch === ')') depth--; if (depth < 0) break }
      t.equal(depth, 0, `${p.title}: balanced parentheses in ${q.expr}`)
    }
  }
  // the figures the issue asks a dashboard for
  const titles = dashboard.panels.map(p => p.title).join('\n')
  for (const want of [/cache/i, /fetched upstream/i, /latency/i, /upstream errors/i, /rate-limit/i, /replication lag/i]) t.match(titles, want)
})

t.test('every metric and label the dashboard queries is one ferry exports', async t => {
  const proxy = parse((await get(`${ferry.url}/metrics`)).body.toString())
  const repl = parse((await get(`http://127.0.0.1:${metricsPort}/metrics`)).body.toString())
  const names = new Set([...proxy.names, ...repl.names])
  const labels = new Map([...proxy.labels, ...repl.labels])
  t.ok(proxy.names.has('ferry_upstream_ratelimit_remaining'), 'the rate-limit headroom is exported')
  t.ok(proxy.labels.get('ferry_upstream_ratelimit_remaining')?.has('upstream'), 'per upstream, once reported')
  const m = /ferry_upstream_ratelimit_remaining\{upstream="hub"\} (\d+)/.exec((await get(`${ferry.url}/metrics`)).body.toString())
  t.equal(Number(m?.[1]), 100 - reporting.counted(), 'what the upstream last reported')
  let checked = 0
  for (const p of dashboard.panels) {
    for (const q of p.targets) {
      const used = [...q.expr.matchAll(/\b(ferry_[a-z0-9_]+)/g)].map(x => x[1]!.replace(/_(bucket|count|sum)$/, ''))
      t.ok(used.length > 0, `${p.title}: queries a ferry metric`)
      for (const name of used) {
        t.ok(names.has(name), `${p.title}: ${name} is exported`)
        checked++
        const by = /\bby \(([^)]*)\)/.exec(q.expr)
        const have = labels.get(name)
        if (by === null || have === undefined) continue
        for (const label of by[1]!.split(',').map(s => s.trim()).filter(l => l !== 'le')) t.ok(have.has(label), `${p.title}: ${name} carries the label ${label}`)
      }
    }
  }
  t.ok(checked >= 20, `${checked} metric references checked`)
})
