// What a repository holds, written down as it learns it: a manifest served
// or pushed under a repository links it, its config and layers, its child
// manifests, and (with a subject) its place among the subject's referrers.
// A proxied repository that asks for a digest the region holds for another
// one gets it linked only once its upstream confirms the digest under this
// name (a HEAD, no bytes): base layers shared by many images stay one copy
// and one fetch, and no name reads what its upstream would not give it.
import { parseManifest } from '../oci/manifest.ts'
import { ALL_MANIFEST_TYPES } from '../oci/media-types.ts'
import type { Digest } from '../oci/reference.ts'
import type { Logger } from '../observe/logger.ts'
import { RegistryError } from '../registry-client/errors.ts'
import type { Links } from '../state/region-state.ts'
import type { Route } from '../upstream/router.ts'
import { boundedCache } from '../common/bounded-cache.ts'

export class Linker {
  private readonly links: Links
  private readonly log: Logger
  /** (repository, manifest) pairs whose links this process wrote: each once. */
  private readonly done = boundedCache<string, true>(50_000)
  private readonly confirming = new Map<string, Promise<number | undefined>>()
  /** Blob links being written: a manifest's walk and the blob's own fetch ask at once, and one write serves both. */
  private readonly writing = new Map<string, Promise<void>>()

  constructor (links: Links, log: Logger) {
    this.links = links
    this.log = log
  }

  async blob (repo: string, digest: string): Promise<void> {
    const key = `${repo}\nb\n${digest}`
    if (this.done.has(key)) return
    let write = this.writing.get(key)
    if (write === undefined) {
      write = this.links.link(repo, 'blob', digest)
        .then(() => { this.done.set(key, true) })
        .finally(() => this.writing.delete(key))
      this.writing.set(key, write)
    }
    await write
  }

  /** `repo` holds this manifest and what it names. */
  async manifest (repo: string, digest: string, body: Buffer): Promise<void> {
    const key = `${repo}\nm\n${digest}`
    if (this.done.has(key)) return
    await this.links.link(repo, 'manifest', digest)
    let parsed
    try { parsed = parseManifest(body) } catch { this.done.set(key, true); return }
    for (const d of [...(parsed.config !== undefined ? [parsed.config] : []), ...parsed.layers]) await this.blob(repo, d.digest)
    for (const child of parsed.manifests) {
      if (ALL_MANIFEST_TYPES.includes(child.mediaType)) await this.links.link(repo, 'manifest', child.digest)
    }
    if (parsed.subject !== undefined) await this.links.addReferrer(repo, parsed.subject.digest, digest)
    this.done.set(key, true)
  }

  /** The same, in the background: a failure to record costs the client nothing now (it is asked again next time). */
  background (work: Promise<void>, what: string): void {
    work.catch((err: unknown) => { this.log.warn({ err: (err as Error).message, what }, 'a link was not recorded') })
  }

  /**
   * The upstream of a proxied repository confirms it has `digest` under this
   * name (HEAD, one at a time per name and digest), which links it; its 404
   * is the client's. Resolves with the size the upstream gave.
   */
  async confirmBlob (route: Route, repo: string, digest: Digest): Promise<number | undefined> {
    const key = `${repo}\n${digest.value}`
    let p = this.confirming.get(key)
    if (p === undefined) {
      p = (async () => {
        const size = await route.upstream.blobSize(route.repo, digest)
        // confirmed: a link that cannot be written now (state unreachable) is written at the next confirmation
        await this.blob(repo, digest.value).catch((err: unknown) => { this.log.warn({ err: (err as Error).message, repo, digest: digest.value }, 'a link was not recorded') })
        return size
      })().finally(() => this.confirming.delete(key))
      this.confirming.set(key, p)
    }
    return await p
  }

  /** As confirmBlob, for a manifest the region holds: a HEAD by digest under this name. */
  async confirmManifest (route: Route, repo: string, digest: Digest, body: Buffer): Promise<void> {
    const key = `${repo}\nm?\n${digest.value}`
    let p = this.confirming.get(key)
    if (p === undefined) {
      p = (async () => {
        const head = await route.upstream.manifestHead(route.repo, digest.value, ALL_MANIFEST_TYPES)
        if (head.digest !== undefined && head.digest !== digest.value) {
          throw new RegistryError('REGISTRY_BAD_ANSWER', `the upstream answered ${head.digest.slice(0, 80)} for ${digest.value}`, { registry: route.upstream.name, resource: 'manifest', reference: digest.value })
        }
        await this.manifest(repo, digest.value, body).catch((err: unknown) => { this.log.warn({ err: (err as Error).message, repo, digest: digest.value }, 'a link was not recorded') })
        return undefined
      })().finally(() => this.confirming.delete(key))
      this.confirming.set(key, p)
    }
    await p
  }
}
