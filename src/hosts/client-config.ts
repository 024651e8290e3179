// `ferry hosts`: the configuration nodes need to pull through ferry, made
// from the region file: containerd's certs.d/<host>/hosts.toml for every
// registry host an upstream answers to, Docker's daemon.json
// registry-mirrors, Podman's (and CRI-O's) registries.conf mirrors. The
// regions come in order: a node tries the first, then the next. Nothing here
// touches the network; check-hosts.ts reads such files back.
import type { RegionConfig, UpstreamConfig } from '../config/region-config.ts'

/** Where --strict points containerd's server: a closed port on the node itself, so nothing past the regions is ever asked. */
export const STRICT_SERVER = 'http://127.0.0.1:1'

export interface Mirror { readonly name: string, readonly url: URL }

export interface HostsOptions {
  readonly mirrors: readonly Mirror[]
  /** Never the upstream: a node pulls through the mirrors or not at all. */
  readonly strict: boolean
  /** The CA a node verifies an https mirror with (a path on the node). */
  readonly caFile: string | undefined
  /** How long a node waits to connect to a mirror before the next (containerd). */
  readonly dialTimeout: string
}

/** A file to write: its path under the output folder, and its text. */
export interface OutFile { readonly path: string, readonly text: string }

/** The registry hosts clients name an upstream by (its aliases, its URL's host among them). */
export function hostsOf (u: UpstreamConfig): string[] {
  return [...new Set(u.aliases.map(a => a.toLowerCase()))].sort()
}

function tomlString (s: string): string { return JSON.stringify(s) } // TOML basic strings take JSON's escapes for these characters

export function containerdHosts (config: RegionConfig, o: HostsOptions): OutFile[] {
  const out: OutFile[] = []
  const mirrorBlocks = o.mirrors.map(m => [
    `# ${m.name}`,
    `[host.${tomlString(m.url.origin)}]`,
    '  capabilities = ["pull", "resolve"]',
    `  dial_timeout = ${tomlString(o.dialTimeout)}`,
    ...(m.url.protocol === 'https:' && o.caFile !== undefined ? [`  ca = ${tomlString(o.caFile)}`] : []),
  ].join('\n'))
  for (const u of config.upstreams) {
    for (const host of hostsOf(u)) {
      // the upstream itself (containerd would take https://<host>, which for docker.io is not the registry)
      const server = u.url.origin
      const head = [
        `# ferry hosts: ${host} is upstream "${u.name}" of region ${config.region}, pulled through ${o.mirrors.map(m => m.name).join(', then ')}`,
        // strict: a server that can answer nothing. Without a server line containerd still falls back to
        // https://<host> (measured with 1.6), the upstream itself (containerd #9206)
        o.strict ? `server = ${tomlString(STRICT_SERVER)}  # --strict: no way past the regions` : `server = ${tomlString(server)}`,
      ]
      out.push({ path: `${host}/hosts.toml`, text: [...head, '', ...mirrorBlocks.map(b => b + '\n')].join('\n') })
    }
  }
  return out
}

/**
 * Docker's daemon.json: `registry-mirrors` covers Docker Hub only, and
 * Docker always falls back to Docker Hub, so --strict cannot be said here
 * (the caller warns). Mirrors are plain origins: Docker refuses a path.
 */
export function dockerDaemon (config: RegionConfig, o: HostsOptions): { file: OutFile, warnings: string[] } {
  const warnings: string[] = []
  if (!config.upstreams.some(u => u.dockerHub)) warnings.push('docker: registry-mirrors only covers Docker Hub, and no upstream of this region is Docker Hub')
  if (o.strict) warnings.push('docker: --strict cannot be said to Docker: it falls back to Docker Hub when every mirror fails')
  const insecure = o.mirrors.filter(m => m.url.protocol === 'http:').map(m => m.url.host)
  const doc = { 'registry-mirrors': o.mirrors.map(m => m.url.origin), ...(insecure.length > 0 ? { 'insecure-registries': insecure } : {}) }
  return { file: { path: 'daemon.json', text: JSON.stringify(doc, null, 2) + '\n' }, warnings }
}

/**
 * Podman's (CRI-O's, Buildah's) registries.conf: per registry host, the
 * regions as mirrors under the upstream's prefix (ferry routes the path);
 * --strict makes the first region the location itself, so nothing names
 * the upstream.
 */
export function podmanRegistries (config: RegionConfig, o: HostsOptions): { file: OutFile, warnings: string[] } {
  const warnings: string[] = []
  const blocks: string[] = [`# ferry hosts: registries of region ${config.region}, pulled through ${o.mirrors.map(m => m.name).join(', then ')}`]
  for (const u of config.upstreams) {
    // Podman sends no ?ns=: a region tells upstreams apart by the path prefix, or the default takes what has none
    const path = u.prefix !== undefined ? `/${u.prefix}` : u === config.defaultUpstream ? '' : undefined
    if (path === undefined) { warnings.push(`podman: upstream "${u.name}" has neither a prefix nor is the default: ferry cannot tell its requests from Podman apart; give it a prefix`); continue }
    const mirrors = o.mirrors.map(m => ({ location: `${m.url.host}${path}`, insecure: m.url.protocol === 'http:' }))
    for (const host of hostsOf(u)) {
      const [first, ...rest] = mirrors
      const location = o.strict ? first!.location : host
      const lines = ['', '[[registry]]', `prefix = ${tomlString(host)}`, `location = ${tomlString(location)}`]
      if (o.strict && first!.insecure) lines.push('insecure = true')
      for (const m of o.strict ? rest : mirrors) lines.push('', '[[registry.mirror]]', `location = ${tomlString(m.location)}`, ...(m.insecure ? ['insecure = true'] : []))
      blocks.push(lines.join('\n'))
    }
  }
  return { file: { path: 'registries.conf', text: blocks.join('\n') + '\n' }, warnings }
}
