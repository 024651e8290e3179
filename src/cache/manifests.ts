// Manifests and tags. A manifest by digest is immutable: cached once, served
// forever. A tag moves: its mapping is fresh for the upstream's tagTTL (no
// upstream request at all), then revalidated with a HEAD, and served stale
// for up to staleIfError when the upstream is down or rate-limits.
//
// What a tag resolves to depends on the client's Accept (an index, one
// platform's manifest, Docker schema2), so each tag keeps one entry per
// Accept set it was fetched with (tag-entries.ts).
import { createHash } from 'node:crypto'
import { DigestInvalid, ManifestBlobUnknown, ManifestInvalid, ManifestUnknown } from '../oci/errors.ts'
import { parseManifest, type Descriptor } from '../oci/manifest.ts'
import { ALL_MANIFEST_TYPES, accepts } from '../oci/media-types.ts'
import { parseDigest, type Digest } from '../oci/reference.ts'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'
import { RegistryError } from '../registry-client/errors.ts'
import type { Linker } from '../content/linker.ts'
import type { Links, RegionEvent, RegionState, TagEntry } from '../state/region-state.ts'
import type { PeerRegions } from '../upstream/peer-regions.ts'
import { canonicalName, type Route } from '../upstream/router.ts'
import { ManifestStore, type Manifest } from './manifest-store.ts'
import { ANY_ACCEPT, pick } from './tag-entries.ts'

export type { Manifest } from './manifest-store.ts'
export { ANY_ACCEPT, pick } from './tag-entries.ts'

/** A tag of a repository, named as clients name it. */
interface TagKey { readonly repo: string, readonly tag: string }

export class ManifestCache {
  private readonly manifests: ManifestStore
  private readonly state: RegionState
  private readonly log: Logger
  private readonly metrics: Metrics
  private readonly inflight = new Map<string, Promise<Manifest>>()
  private readonly regions: PeerRegions | undefined

  private readonly linker: Linker
  private readonly links: Links

  constructor (opts: { manifests: ManifestStore, state: RegionState, linker: Linker, log: Logger, metrics: Metrics, regions?: PeerRegions | undefined }) {
    this.manifests = opts.manifests
    this.linker = opts.linker
    this.links = opts.state.links
    this.regions = opts.regions
    this.state = opts.state
    this.log = opts.log
    this.metrics = opts.metrics
  }

  async byDigest (route: Route, digest: Digest): Promise<Manifest> {
    const repo = canonicalName(route)
    const local = await this.manifests.get(digest.value)
    if (local !== undefined) {
      this.metrics.cache.inc({ kind: 'manifest', result: 'hit' })
      // held for another repository: this one gets it once its upstream says it has it too
      const linked = await this.links.linked(repo, 'manifest', digest.value).catch(() => undefined) // state unreachable: ask the upstream
      if (linked === undefined) await this.linker.confirmManifest(route, repo, digest, local.body)
      return local
    }
    this.metrics.cache.inc({ kind: 'manifest', result: 'miss' })
    return await this.once(`d|${route.upstream.name}|${digest.value}`, async () => await this.fromRegions(route, digest) ?? await this.fetch(route, digest.value, ALL_MANIFEST_TYPES, digest))
  }

  /** A manifest by digest from another region (verified here), before the upstream. */
  private async fromRegions (route: Route, digest: Digest): Promise<Manifest | undefined> {
    if (this.regions === undefined) return undefined
    const got = await this.regions.manifest(canonicalName(route), digest.value, ALL_MANIFEST_TYPES.join(', '))
    if (got === undefined) return undefined
    if (createHash(digest.algorithm).update(got.body).digest('hex') !== digest.hex) {
      this.log.warn({ peer: got.peer, digest: digest.value }, 'a peer region sent a manifest that does not match its digest; asking the upstream')
      return undefined
    }
    let type = got.mediaType
    if (type === undefined || !ALL_MANIFEST_TYPES.includes(type)) {
      try { type = parseManifest(got.body).mediaType } catch { return undefined }
    }
    if (type === undefined) return undefined
    this.keep(route, digest, type, got.body)
    this.log.info({ peer: got.peer, digest: digest.value }, 'manifest from a peer region')
    return { digest: digest.value, mediaType: type, body: got.body }
  }

  async byTag (route: Route, tag: string, accept: readonly string[]): Promise<Manifest> {
    const key: TagKey = { repo: canonicalName(route), tag }
    const entry = pick(await this.state.tags.get(key.repo, tag), accept)
    const { tagTTLMs, staleIfErrorMs } = route.upstream.config
    if (entry !== undefined) {
      const age = Date.now() - entry.fetchedAt
      if (age < tagTTLMs) {
        const local = await this.manifests.get(entry.digest)
        if (local !== undefined) {
          this.metrics.cache.inc({ kind: 'tag', result: 'hit' })
          // the upstream gave this digest for this repository's tag: it holds it (written once per process)
          this.linker.background(this.linker.manifest(key.repo, entry.digest, local.body), 'manifest')
          return local
        }
      } else {
        return await this.once(`r|${key.repo}|${tag}|${accept.join(',')}`, () => this.revalidate(route, key, entry, accept, age < tagTTLMs + staleIfErrorMs))
      }
    }
    this.metrics.cache.inc({ kind: 'tag', result: 'miss' })
    return await this.once(`t|${key.repo}|${tag}|${accept.join(',')}`, () => this.fetchTag(route, key, accept))
  }

  private async revalidate (route: Route, key: TagKey, entry: TagEntry, accept: readonly string[], staleAllowed: boolean): Promise<Manifest> {
    if (staleAllowed && route.upstream.health.budgetLow()) {
      // what is left of the upstream's window goes to pulls with nothing cached; this tag waits
      const local = await this.manifests.get(entry.digest)
      if (local !== undefined) {
        this.metrics.cache.inc({ kind: 'tag', result: 'stale' })
        this.log.info({ upstream: route.upstream.name, repo: key.repo, tag: key.tag, digest: entry.digest }, 'upstream rate limit nearly spent; serving cached tag stale')
        return { ...local, stale: 'upstream rate limit nearly spent' }
      }
    }
    let now: { digest: string | undefined, mediaType: string | undefined }
    try {
      now = await route.upstream.manifestHead(route.repo, key.tag, accept)
    } catch (err) {
      if (err instanceof RegistryError && err.code === 'REGISTRY_NOT_FOUND') await this.state.tags.drop(key.repo, key.tag, accept)
      const local = staleAllowed && upstreamDown(err) ? await this.manifests.get(entry.digest) : undefined
      if (local === undefined) throw err
      this.metrics.cache.inc({ kind: 'tag', result: 'stale' })
      this.log.warn({ upstream: route.upstream.name, repo: key.repo, tag: key.tag, digest: entry.digest, err: (err as Error).message }, 'upstream failed; serving cached tag stale')
      return { ...local, stale: 'upstream unavailable' }
    }
    if (now.digest === entry.digest && (now.mediaType === undefined || now.mediaType === entry.mediaType)) {
      this.metrics.cache.inc({ kind: 'tag', result: 'revalidated' })
      this.background(this.state.tags.put(key.repo, key.tag, { ...entry, fetchedAt: Date.now() }), 'tag')
      const local = await this.manifests.get(entry.digest)
      if (local !== undefined) return local
    }
    // moved (or the HEAD said too little): fetch it
    return await this.fetchTag(route, key, accept)
  }

  private async fetchTag (route: Route, key: TagKey, accept: readonly string[]): Promise<Manifest> {
    const m = await this.fetch(route, key.tag, accept.length > 0 ? accept : undefined, undefined)
    // cache only what answers this Accept set again; an answer the client did not ask for is passed on, not kept
    if (accept.length === 0 || accepts(accept, m.mediaType)) {
      this.background(this.state.tags.put(key.repo, key.tag, { accept, digest: m.digest, mediaType: m.mediaType, size: m.body.length, fetchedAt: Date.now() })
        .then(() => this.record({ kind: 'tag', name: canonicalName(route), tag: key.tag, digest: m.digest, mediaType: m.mediaType, at: Date.now() })), 'tag')
    }
    return m
  }

  /** GET a manifest from the upstream, verify its digest, keep it. */
  private async fetch (route: Route, reference: string, accept: readonly string[] | undefined, expected: Digest | undefined): Promise<Manifest> {
    const got = await route.upstream.manifest(route.repo, reference, accept)
    const digest = expected ?? (got.digest !== undefined ? safeDigest(got.digest) : undefined) ?? sha256(got.body)
    const actual = createHash(digest.algorithm).update(got.body).digest('hex')
    if (actual !== digest.hex) {
      this.metrics.fillFailures.inc({ reason: 'digest_mismatch' })
      this.log.warn({ upstream: route.upstream.name, repo: route.repo, reference, expected: digest.value, actual: `${digest.algorithm}:${actual}` }, 'upstream manifest digest mismatch; not cached')
      throw new RegistryError('REGISTRY_BAD_ANSWER', `the upstream's manifest does not match its digest ${digest.value}`, { registry: route.upstream.name, resource: 'manifest', reference })
    }
    let parsed
    try { parsed = parseManifest(got.body) } catch (err) {
      throw new RegistryError('REGISTRY_BAD_ANSWER', `the upstream's manifest is invalid: ${(err as Error).message}`, { registry: route.upstream.name, resource: 'manifest', reference })
    }
    // Content-Type as the upstream stored it; the document's own mediaType when the upstream sent none
    const header = got.mediaType
    const type = header !== undefined && header !== 'application/octet-stream' && header !== 'text/plain' ? header : parsed.mediaType
    if (type === undefined) throw new RegistryError('REGISTRY_BAD_ANSWER', 'the upstream\'s manifest has no media type', { registry: route.upstream.name, resource: 'manifest', reference })
    this.keep(route, digest, type, got.body)
    return { digest: digest.value, mediaType: type, body: got.body }
  }

  /** In memory at once; on disk and in the region's stream without delaying the client. */
  private keep (route: Route, digest: Digest, mediaType: string, body: Buffer): void {
    this.manifests.remember(digest.value, mediaType, body)
    this.linker.background(this.linker.manifest(canonicalName(route), digest.value, body), 'manifest')
    this.background(this.manifests.save(digest, mediaType, body).then(() => this.record({ kind: 'manifest', name: canonicalName(route), digest: digest.value, mediaType, at: Date.now() })), 'manifest')
  }

  /** Tell the region's stream (for replication); a failure to record costs no client anything. */
  private async record (event: RegionEvent): Promise<void> {
    await this.state.events.append(event).catch((err: unknown) => {
      this.log.warn({ err: (err as Error).message, kind: event.kind }, 'not recorded in the region stream')
    })
  }

  /** For another region asking peer-to-peer: only what is cached here, whatever its age; never the upstream. */
  async cachedOnly (route: Route, reference: { tag: string } | { digest: Digest }, accept: readonly string[]): Promise<Manifest> {
    const digest = 'digest' in reference
      ? reference.digest.value
      : pick(await this.state.tags.get(canonicalName(route), reference.tag), accept)?.digest
    // a digest this repository does not hold is unknown here, whatever the region holds for others
    if ('digest' in reference && await this.links.linked(canonicalName(route), 'manifest', reference.digest.value) === undefined) throw new ManifestUnknown(reference.digest.value)
    const local = digest === undefined ? undefined : await this.manifests.get(digest)
    if (local === undefined) throw new ManifestUnknown('digest' in reference ? reference.digest.value : reference.tag)
    return local
  }

  /** The manifest is cached here (memory, or its bytes and type in the store and state). */
  async has (digest: string): Promise<boolean> {
    return await this.manifests.has(digest)
  }

  /**
   * A manifest pushed by another region's replicator: verified against its
   * digest, accepted only if its config and layers are already here (so a
   * tag never points at an image with missing bytes), stored, and the tag
   * set. An index may name platforms this region does not hold: they are
   * fetched from the upstream when asked for, as on any miss. Not recorded
   * in the stream: replication is one hop, never back and forth.
   */
  async put (route: Route, reference: { tag: string } | { digest: Digest }, mediaType: string | undefined, body: Buffer, have: (d: Descriptor) => Promise<boolean>): Promise<Manifest> {
    const digest = 'digest' in reference ? reference.digest : sha256(body)
    const actual = createHash(digest.algorithm).update(body).digest('hex')
    if (actual !== digest.hex) throw new DigestInvalid(digest.value, `the manifest hashes to ${digest.algorithm}:${actual}`)
    const parsed = parseManifest(body)
    const type = mediaType ?? parsed.mediaType
    if (type === undefined || !(ALL_MANIFEST_TYPES as readonly string[]).includes(type)) throw new ManifestInvalid(`not a manifest media type: ${type ?? '(none)'}`, 400)
    for (const d of [...(parsed.config !== undefined ? [parsed.config] : []), ...parsed.layers]) {
      if (!await have(d)) throw new ManifestBlobUnknown(d.digest)
    }
    await this.manifests.save(digest, type, body)
    if ('tag' in reference) {
      await this.state.tags.put(canonicalName(route), reference.tag, { accept: [ANY_ACCEPT], digest: digest.value, mediaType: type, size: body.length, fetchedAt: Date.now() })
    }
    return { digest: digest.value, mediaType: type, body }
  }

  private background (work: Promise<void>, what: string): void {
    work.catch((err: unknown) => { this.log.error({ err: (err as Error).message, what }, 'could not save to the cache') })
  }

  /** Single flight: concurrent identical requests share one upstream round trip. */
  private once (key: string, work: () => Promise<Manifest>): Promise<Manifest> {
    let p = this.inflight.get(key)
    if (p === undefined) {
      p = work().finally(() => this.inflight.delete(key))
      this.inflight.set(key, p)
    }
    return p
  }
}

/** The upstream is down or rate-limiting (not refusing): a cached answer may be served stale. */
export function upstreamDown (err: unknown): boolean {
  return !(err instanceof RegistryError) || err.transient
}

function safeDigest (text: string): Digest | undefined {
  try { return parseDigest(text) } catch { return undefined }
}

function sha256 (body: Buffer): Digest {
  const hex = createHash('sha256').update(body).digest('hex')
  return { algorithm: 'sha256', hex, value: `sha256:${hex}` }
}
