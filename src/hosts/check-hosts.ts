// `ferry hosts --check DIR`: reads the client configuration a node has
// (containerd's certs.d folders, Docker's daemon.json, a registries.conf)
// and says, per registry host, which hops a pull takes in order, flagging
// the classic mistakes: a mirror that cannot resolve tags (they then come
// from the next hop, often the internet), a mirror that is also the server,
// a path in a mirror URL, an https mirror with no CA named, a server left
// as a fallback where the operator wanted none.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseToml } from 'smol-toml'
import { STRICT_SERVER } from './client-config.ts'

export interface HostReport {
  readonly registry: string
  /** Where a pull goes, in order: "mirror URL (pull, resolve)", then the server if it may be used. */
  readonly hops: string[]
  readonly problems: string[]
}

interface HostEntry { capabilities?: unknown, ca?: unknown, skip_verify?: unknown, override_path?: unknown }

export function checkClientConfig (dir: string): { reports: HostReport[], problems: number } {
  const reports: HostReport[] = []
  const certsd = existsSync(join(dir, 'certs.d')) ? join(dir, 'certs.d') : dir
  for (const name of existsSync(certsd) ? readdirSync(certsd).sort() : []) {
    const file = join(certsd, name, 'hosts.toml')
    if (!statSync(join(certsd, name)).isDirectory() || !existsSync(file)) continue
    reports.push(containerdReport(name, readFileSync(file, 'utf8')))
  }
  const daemon = join(dir, 'daemon.json')
  if (existsSync(daemon)) reports.push(dockerReport(readFileSync(daemon, 'utf8')))
  return { reports, problems: reports.reduce((n, r) => n + r.problems.length, 0) }
}

function capabilitiesOf (v: unknown, fallback: string[]): string[] {
  return Array.isArray(v) ? v.filter((c): c is string => typeof c === 'string') : fallback
}

function containerdReport (registry: string, text: string): HostReport {
  const problems: string[] = []
  let doc: Record<string, unknown>
  try {
    doc = parseToml(text) as Record<string, unknown>
  } catch (err) {
    return { registry, hops: [], problems: [`hosts.toml does not parse: ${(err as Error).message.split('\n')[0]}`] }
  }
  const hops: string[] = []
  const hosts = (typeof doc.host === 'object' && doc.host !== null ? doc.host : {}) as Record<string, HostEntry>
  // no server line: containerd takes https://<host>
  const server = typeof doc.server === 'string' ? doc.server : registry === '_default' ? undefined : `https://${registry}`
  let resolves = false
  for (const [url, h] of Object.entries(hosts)) {
    const caps = capabilitiesOf(h.capabilities, ['pull', 'resolve', 'push'])
    hops.push(`${url} (${caps.join(', ') || 'nothing'})`)
    let parsed: URL | undefined
    try { parsed = new URL(url) } catch { problems.push(`${url}: not a URL`) }
    if (parsed !== undefined && parsed.pathname !== '/' && parsed.pathname !== '' && h.override_path !== true) problems.push(`${url}: a path in a mirror URL is ignored unless override_path = true (containerd adds /v2 after the host)`)
    if (parsed?.protocol === 'https:' && h.ca === undefined && h.skip_verify !== true) problems.push(`${url}: https with no ca: the node's system CAs must trust ferry's certificate`)
    if (server !== undefined && url.replace(/\/$/, '') === server.replace(/\/$/, '')) problems.push(`${url}: the mirror is also the server: a failed pull is tried against it twice, and nothing else`)
    if (!caps.includes('resolve') && caps.includes('pull') && !resolves) problems.push(`${url}: no "resolve": tags are resolved by the next hop (${server ?? 'none'}), not through ferry`)
    if (caps.includes('resolve')) resolves = true
  }
  const serverCaps = capabilitiesOf(doc.capabilities, ['pull', 'resolve', 'push'])
  if (server === STRICT_SERVER) hops.push('nothing else (the server is a dead end: ferry hosts --strict)')
  else if (server !== undefined && serverCaps.length > 0) hops.push(`${server} (the server: ${serverCaps.join(', ')})`)
  if (Object.keys(hosts).length === 0) problems.push('no mirror: pulls go to the server directly')
  return { registry, hops, problems }
}

function dockerReport (text: string): HostReport {
  const problems: string[] = []
  let doc: { 'registry-mirrors'?: unknown }
  try { doc = JSON.parse(text) as typeof doc } catch { return { registry: 'docker.io (daemon.json)', hops: [], problems: ['daemon.json does not parse'] } }
  const mirrors = Array.isArray(doc['registry-mirrors']) ? doc['registry-mirrors'].filter((m): m is string => typeof m === 'string') : []
  for (const m of mirrors) {
    try {
      const u = new URL(m)
      if (u.pathname !== '/' && u.pathname !== '') problems.push(`${m}: Docker does not allow a path in a registry mirror (it refuses to start)`)
    } catch { problems.push(`${m}: not a URL`) }
  }
  if (mirrors.length === 0) problems.push('no registry-mirrors: Docker pulls from Docker Hub directly')
  return { registry: 'docker.io (daemon.json)', hops: [...mirrors.map(m => `${m} (pull)`), 'https://registry-1.docker.io (always, when every mirror fails)'], problems }
}
