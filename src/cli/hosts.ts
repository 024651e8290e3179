// ferry hosts: client configuration for the nodes, written from the region
// file (hosts/client-config.ts), or an existing one checked (hosts/check-hosts.ts).
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { loadRegion } from '../config/load.ts'
import { defineCommand, UsageError } from './command.ts'

const usage = `usage: ferry hosts --config FILE --format containerd|docker|podman --out DIR
                   [--regions NAME=URL,...] [--strict] [--ca FILE] [--dial-timeout 2s]
       ferry hosts --check DIR

Write what a node needs to pull through ferry: containerd's
certs.d/<host>/hosts.toml for every registry host an upstream answers to,
Docker's daemon.json (registry-mirrors), or Podman's registries.conf.

  --config FILE       the region file (its upstreams, and its listen address)
  --format F          containerd, docker or podman
  --out DIR           where to write (containerd: DIR/<host>/hosts.toml)
  --regions LIST      the regions a node tries, in order: NAME=URL,NAME=URL
                      (default: this region at its listen address)
  --strict            never the upstream itself: when every region fails, the pull fails
  --ca FILE           the CA file (a path on the node) for https regions
  --dial-timeout D    how long containerd waits to connect before the next region (2s)
  --check DIR         read a node's configuration (certs.d folders, daemon.json) and
                      say which hop each registry's pulls take, and what is wrong`

const FORMATS = ['containerd', 'docker', 'podman'] as const

export const hostsCommand = defineCommand({
  name: 'hosts',
  summary: 'write (or check) the node configuration that pulls through ferry',
  usage,
  options: {
    config: { type: 'string', short: 'c' },
    format: { type: 'string' },
    out: { type: 'string' },
    regions: { type: 'string' },
    strict: { type: 'boolean' },
    ca: { type: 'string' },
    'dial-timeout': { type: 'string' },
    check: { type: 'string' },
  },
  async run (values) {
    if (values.check !== undefined) {
      const { checkClientConfig } = await import('../hosts/check-hosts.ts')
      const { reports, problems } = checkClientConfig(values.check)
      if (reports.length === 0) { console.log(`${values.check}: no certs.d/<host>/hosts.toml and no daemon.json here`); return 1 }
      for (const r of reports) {
        console.log(`${r.registry}:`)
        r.hops.forEach((h, i) => console.log(`  ${i + 1}. ${h}`))
        for (const p of r.problems) console.log(`  ! ${p}`)
      }
      console.log(problems === 0 ? 'no problems found' : `${problems} problem${problems === 1 ? '' : 's'} found`)
      return problems === 0 ? 0 : 1
    }
    if (values.config === undefined) throw new UsageError('ferry hosts: --config FILE is required (or --check DIR)', usage)
    const format = values.format as typeof FORMATS[number] | undefined
    if (format === undefined || !FORMATS.includes(format)) throw new UsageError(`ferry hosts: --format is one of ${FORMATS.join(', ')}`, usage)
    if (values.out === undefined) throw new UsageError('ferry hosts: --out DIR is required', usage)
    const dialTimeout = values['dial-timeout'] ?? '2s'
    if (!/^\d+(ms|s|m)$/.test(dialTimeout)) throw new UsageError('ferry hosts: --dial-timeout takes a duration such as 500ms or 2s', usage)
    const config = await loadRegion(values.config)
    const mirrors = values.regions !== undefined ? parseRegions(values.regions) : [thisRegion(config.region, config.listen, config.tls !== undefined)]
    const { containerdHosts, dockerDaemon, podmanRegistries } = await import('../hosts/client-config.ts')
    const opts = { mirrors, strict: values.strict === true, caFile: values.ca, dialTimeout }
    const made = format === 'containerd' ? { files: containerdHosts(config, opts), warnings: [] } : (() => { const r = format === 'docker' ? dockerDaemon(config, opts) : podmanRegistries(config, opts); return { files: [r.file], warnings: r.warnings } })()
    for (const f of made.files) {
      const path = join(values.out, f.path)
      mkdirSync(dirname(path), { recursive: true })
      writeFileSync(path, f.text)
      console.log(`wrote ${path}`)
    }
    for (const w of made.warnings) console.error(`warning: ${w}`)
    return 0
  },
})

function parseRegions (list: string): { name: string, url: URL }[] {
  return list.split(',').map((item, i) => {
    const eq = item.indexOf('=')
    const [name, raw] = eq > 0 && !item.slice(0, eq).includes('/') ? [item.slice(0, eq), item.slice(eq + 1)] : [`region-${i + 1}`, item]
    let url: URL
    try { url = new URL(raw) } catch { throw new UsageError(`ferry hosts: --regions: "${raw}" is not an http:// or https:// URL`, usage) }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || (url.pathname !== '/' && url.pathname !== '') || url.search !== '') throw new UsageError(`ferry hosts: --regions: "${raw}" must be http(s)://HOST[:PORT], no path`, usage)
    return { name, url }
  })
}

function thisRegion (name: string, listen: { host: string, port: number }, tls: boolean): { name: string, url: URL } {
  if (listen.host === '0.0.0.0' || listen.host === '::' || listen.host === '') throw new UsageError(`ferry hosts: this region listens on every address (${listen.host}): say where nodes reach it with --regions ${name}=http://HOST:PORT`, usage)
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host
  return { name, url: new URL(`${tls ? 'https' : 'http'}://${host}:${listen.port}`) }
}
