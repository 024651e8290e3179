// What a repository name means in this region: a proxied repository (an
// upstream is its source of truth) or a hosted one (clients push it). In
// order: an upstream's prefix, containerd's `?ns=` naming an upstream,
// `?ns=` and the name together in a hosted namespace (imported content on an
// air-gapped site keeps the names clients use: docker.io/library/alpine), a
// hosted namespace, the default upstream. An `?ns=` that names an upstream
// wins over a hosted namespace, so a node pulling docker.io/acme/app through
// ferry never gets an image someone pushed to the hosted acme/app. An `?ns=`
// that names neither an upstream nor imported content, nor ferry itself, is
// refused: a node that mirrors ghcr.io through a ferry without a ghcr.io
// upstream would otherwise get ghcr.io/acme/app:v1 from the default upstream
// (docker.io/acme/app:v1, whoever owns that name there) or from a hosted
// acme/app; with a 404 containerd goes on to its next host.
import type { HostedNamespace } from '../config/region-config.ts'
import { NameUnknown } from '../oci/errors.ts'
import { canonicalName, type Route, type Router } from '../upstream/router.ts'

/** What `?ns=` may be to join the name: a registry host, as a first name component may be. */
const REGISTRY_HOST = /^[a-zA-Z0-9]+([.-][a-zA-Z0-9]+)*(:[0-9]{1,5})?$/

export type Target =
  | { readonly kind: 'proxied', readonly name: string, readonly route: Route }
  | { readonly kind: 'hosted', readonly name: string, readonly namespace: HostedNamespace }

export class Targets {
  private readonly router: Router
  private readonly hosted: readonly HostedNamespace[]
  private readonly ownHosts: ReadonlySet<string>

  private readonly onForeignNs: (ns: string) => void

  /**
   * `ownHosts`: the names clients pull from ferry itself by (lowercase), an `?ns=` naming one routes as none.
   * `onForeignNs` hears each `?ns=` refused (a node set to mirror a registry this ferry does not).
   */
  constructor (router: Router, hosted: readonly HostedNamespace[], ownHosts: readonly string[] = [], onForeignNs: (ns: string) => void = () => {}) {
    this.router = router
    this.hosted = hosted
    this.ownHosts = new Set(ownHosts)
    this.onForeignNs = onForeignNs
  }

  /** `name` (validated) as routed: its kind and the name every path gives it. */
  resolve (name: string, givenNs: string | undefined): Target {
    const ns = givenNs === undefined || givenNs === '' || this.ownHosts.has(givenNs.toLowerCase()) ? undefined : givenNs
    const named = this.router.named(name, ns)
    if (named !== undefined) return { kind: 'proxied', name: canonicalName(named), route: named }
    if (ns !== undefined && REGISTRY_HOST.test(ns)) {
      // an air-gapped site: the registry containerd names holds no upstream here, but imported content under its name
      const full = `${ns.toLowerCase()}/${name}`
      const imported = this.hosted.find(h => full.startsWith(h.prefix))
      if (imported !== undefined) return { kind: 'hosted', name: full, namespace: imported }
    }
    if (ns !== undefined) {
      this.onForeignNs(ns)
      throw new NameUnknown(name, { name, ns: ns.slice(0, 255), reason: 'this ferry mirrors no registry of that name: no upstream has it as its host or among its aliases, and no imported content is under it (a name ferry itself is pulled by goes in hostnames)' })
    }
    const namespace = this.hosted.find(h => name.startsWith(h.prefix) && name.length > h.prefix.length)
    if (namespace !== undefined) return { kind: 'hosted', name, namespace }
    const route = this.router.byDefault(name)
    if (route !== undefined) return { kind: 'proxied', name: canonicalName(route), route }
    throw new NameUnknown(name, { name, reason: 'no upstream serves this name and no hosted namespace holds it' })
  }

  /** The hosted namespace holding `name`, if any. */
  namespaceOf (name: string): HostedNamespace | undefined {
    return this.hosted.find(h => name.startsWith(h.prefix))
  }

  get namespaces (): readonly HostedNamespace[] { return this.hosted }
}
