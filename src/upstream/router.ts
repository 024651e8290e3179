// Which upstream a request goes to, and the repository name it has there:
//   1. path prefix:  /v2/docker.io/library/nginx/...  -> upstream with prefix "docker.io"
//   2. containerd's ?ns=<host>, matched to an upstream's host or aliases (or, where none claims it, a
//      prefix that is a host, and Docker Hub's names for a Docker Hub upstream)
//   3. the default upstream
import { DOCKER_HUB_HOSTS } from '../config/parse.ts'
import type { UpstreamConfig } from '../config/region-config.ts'
import { NameUnknown } from '../oci/errors.ts'
import type { Upstream } from './upstream.ts'

export interface Route {
  readonly upstream: Upstream
  /** The name as the upstream knows it (prefix stripped, library/ added for Docker Hub). */
  readonly repo: string
}

export class Router {
  private readonly byPrefix: { prefix: string, upstream: Upstream }[]
  private readonly byHost: Map<string, Upstream>
  private readonly fallback: Upstream | undefined

  constructor (upstreams: readonly Upstream[], fallback: Upstream | undefined) {
    // longest prefix first, so "ghcr.io/org" wins over "ghcr.io"
    this.byPrefix = upstreams.filter(u => u.config.prefix !== undefined)
      .map(u => ({ prefix: u.config.prefix!, upstream: u }))
      .sort((a, b) => b.prefix.length - a.prefix.length)
    this.byHost = nsHosts(upstreams)
    this.fallback = fallback
  }

  route (name: string, ns: string | undefined): Route {
    const route = this.named(name, ns) ?? this.byDefault(name)
    if (route === undefined) throw new NameUnknown(name, { name, reason: 'no upstream serves this name: no prefix matches and no default upstream is configured' })
    return route
  }

  /** The upstream a name's prefix, or containerd's `?ns=`, names; undefined when neither does. */
  named (name: string, ns: string | undefined): Route | undefined {
    for (const { prefix, upstream } of this.byPrefix) {
      if (name.length > prefix.length && name.startsWith(prefix) && name[prefix.length] === '/') {
        return { upstream, repo: this.upstreamName(upstream, name.slice(prefix.length + 1)) }
      }
    }
    if (ns !== undefined) {
      const upstream = this.byHost.get(ns.toLowerCase())
      if (upstream !== undefined) return { upstream, repo: this.upstreamName(upstream, name) }
    }
    return undefined
  }

  /** The default upstream, for a name nothing else claims. */
  byDefault (name: string): Route | undefined {
    return this.fallback === undefined ? undefined : { upstream: this.fallback, repo: this.upstreamName(this.fallback, name) }
  }

  private upstreamName (upstream: Upstream, repo: string): string {
    return upstream.config.dockerHub && !repo.includes('/') ? `library/${repo}` : repo
  }
}

/**
 * The name every region's clients use for a route's repository: the
 * upstream's prefix and the upstream's name (library/ included). Regions
 * that share upstream prefixes route it the same way.
 */
export function canonicalName (route: Route): string {
  const prefix = route.upstream.config.prefix
  return prefix !== undefined ? `${prefix}/${route.repo}` : route.repo
}

/**
 * The registry hosts containerd's `?ns=` routes to each upstream: its URL's host and `aliases` (the first
 * upstream to claim a host has it), then, where no upstream claims them, the names an upstream goes by
 * without saying so: a prefix that is a registry host ("ghcr.io"), and Docker Hub's names for a Docker Hub
 * upstream (containerd sends ?ns=docker.io).
 */
export function nsHosts<U extends { readonly config: UpstreamConfig }> (upstreams: readonly U[]): Map<string, U> {
  const byHost = new Map<string, U>()
  for (const u of upstreams) for (const host of u.config.aliases) if (!byHost.has(host)) byHost.set(host, u)
  for (const u of upstreams) {
    const implicit = [
      ...(u.config.prefix !== undefined && !u.config.prefix.includes('/') && /[.:]/.test(u.config.prefix) ? [u.config.prefix] : []),
      ...(u.config.dockerHub ? DOCKER_HUB_HOSTS : []),
    ]
    for (const host of implicit) if (!byHost.has(host)) byHost.set(host, u)
  }
  return byHost
}
