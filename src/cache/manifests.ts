// Manifests and tags. A manifest by digest is immutable: cached once, served
// forever. A tag moves: its mapping is fresh for the upstream's tagTTL (no
// upstream request at all), then revalidated with a HEAD, and served stale
// for up to staleIfError when the upstream is down or rate-limits.
//
// What a tag resolves to depends on the client's Accept (an index, one
// platform's manifest, Docker schema2), so each tag keeps one entry per
// Accept set it was fetched with. An entry answers a request when its media
// type is one the client accepts and it was fetched with at least the
// client's Accept set (or exactly it): the upstream would have answered the
// same, and the cache never hands a client a type it did not accept.
import { createHash, randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { LRUCache } from 'lru-cache'
import { collect } from '../io/body.ts'
import { DigestInvalid, ManifestBlobUnknown, ManifestInvalid, ManifestUnknown, OciError } from '../oci/errors.ts'
import { MAX_MANIFEST_BYTES, parseManifest, type Descriptor } from '../oci/manifest.ts'
import { ALL_MANIFEST_TYPES, accepts, isSubset, sameSet } from '../oci/media-types.ts'
import { parseDigest, type Digest } from '../oci/reference.ts'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'
import type { BlobStore } from '../store/blob-store.ts'
import type { RegionEvent, RegionState, TagEntry, TagKey } from '../store/region-state.ts'
import { canonicalName, type Route } from '../upstream/router.ts'
import type { UpstreamResponse } from '../upstream/upstream.ts'
import type { PeerRegions } from './peer-regions.ts'

export interface Manifest {
  readonly digest: string
  readonly mediaType: string
  readonly body: Buffer
  /** Set when a stale tag mapping was served because the upstream failed. */
  readonly stale?: boolean
}

const MAX_ENTRIES_PER_TAG = 8
/** Upstream failures for which a cached tag may be served stale. */
const STALE_OK_STATUS = new Set([429, 500, 502, 503, 504])

export class ManifestCache {
  private readonly store: BlobStore
  private readonly state: RegionState
  private readonly staging: string
  private readonly log: Logger
  private readonly metrics: Metrics
  private readonly memory: LRUCache<string, { mediaType: string, body: Buffer }>
  private readonly inflight = new Map<string, Promise<Manifest>>()
  private readonly tagUpdates = new Map<string, Promise<void>>()

  private readonly regions: PeerRegions | undefined

  constructor (opts: { store: BlobStore, state: RegionState, staging: string, log: Logger, metrics: Metrics, memoryBytes: number, regions?: PeerRegions }) {
    this.regions = opts.regions
    this.store = opts.store
    this.state = opts.state
    this.staging = opts.staging
    this.log = opts.log
    this.metrics = opts.metrics
    this.memory = new LRUCache({ maxSize: Math.max(1, opts.memoryBytes), sizeCalculation: v => v.body.length + 200 })
  }

  async byDigest (route: Route, digest: Digest): Promise<Manifest> {
    const local = await this.local(digest.value)
    if (local !== undefined) {
      this.metrics.cache.inc({ kind: 'manifest', result: 'hit' })
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
    this.memory.set(digest.value, { mediaType: type, body: got.body })
    this.background(this.save(digest, type, got.body).then(() => this.record({ kind: 'manifest', name: canonicalName(route), digest: digest.value, mediaType: type, at: Date.now() })), 'manifest')
    this.log.info({ peer: got.peer, digest: digest.value }, 'manifest from a peer region')
    return { digest: digest.value, mediaType: type, body: got.body }
  }

  async byTag (route: Route, tag: string, accept: readonly string[]): Promise<Manifest> {
    const key: TagKey = { upstream: route.upstream.name, repo: route.repo, tag }
    const entries = await this.state.getTag(key)
    const entry = pick(entries, accept)
    const { tagTTLMs, staleIfErrorMs } = route.upstream.config
    if (entry !== undefined) {
      const age = Date.now() - entry.fetchedAt
      if (age < tagTTLMs) {
        const local = await this.local(entry.digest)
        if (local !== undefined) {
          this.metrics.cache.inc({ kind: 'tag', result: 'hit' })
          return local
        }
      } else {
        return await this.once(`r|${key.upstream}|${key.repo}|${tag}|${accept.join(',')}`, () => this.revalidate(route, key, entry, accept, age < tagTTLMs + staleIfErrorMs))
      }
    }
    this.metrics.cache.inc({ kind: 'tag', result: 'miss' })
    return await this.once(`t|${key.upstream}|${key.repo}|${tag}|${accept.join(',')}`, () => this.fetchTag(route, key, accept))
  }

  private async revalidate (route: Route, key: TagKey, entry: TagEntry, accept: readonly string[], staleAllowed: boolean): Promise<Manifest> {
    const serveStale = async (why: unknown): Promise<Manifest> => {
      const local = staleAllowed ? await this.local(entry.digest) : undefined
      if (local === undefined) throw why
      this.metrics.cache.inc({ kind: 'tag', result: 'stale' })
      this.log.warn({ upstream: key.upstream, repo: key.repo, tag: key.tag, digest: entry.digest, err: (why as Error).message }, 'upstream failed; serving cached tag stale')
      return { ...local, stale: true }
    }
    let res: UpstreamResponse
    try {
      res = await route.upstream.request({ method: 'HEAD', repo: route.repo, path: `manifests/${key.tag}`, headers: acceptHeader(accept), kind: 'manifest' })
    } catch (err) {
      return await serveStale(err)
    }
    res.body.resume()
    if (res.status === 200) {
      const headDigest = res.headers['docker-content-digest']
      const type = contentType(res.headers['content-type'])
      if (headDigest === entry.digest && (type === undefined || type === entry.mediaType)) {
        this.metrics.cache.inc({ kind: 'tag', result: 'revalidated' })
        this.background(this.putEntry(key, { ...entry, fetchedAt: Date.now() }), 'tag')
        const local = await this.local(entry.digest)
        if (local !== undefined) return local
      }
      // moved (or the HEAD said too little): fetch it
      return await this.fetchTag(route, key, accept)
    }
    if (STALE_OK_STATUS.has(res.status)) return await serveStale(await route.upstream.errorFrom(res, 'manifest', key.tag))
    if (res.status === 404) await this.dropEntry(key, accept)
    throw await route.upstream.errorFrom(res, 'manifest', key.tag)
  }

  private async fetchTag (route: Route, key: TagKey, accept: readonly string[]): Promise<Manifest> {
    const m = await this.fetch(route, key.tag, accept.length > 0 ? accept : undefined, undefined)
    // cache only what answers this Accept set again; an answer the client did not ask for is passed on, not kept
    if (accept.length === 0 || accepts(accept, m.mediaType)) {
      this.background(this.putEntry(key, { accept, digest: m.digest, mediaType: m.mediaType, size: m.body.length, fetchedAt: Date.now() })
        .then(() => this.record({ kind: 'tag', name: canonicalName(route), tag: key.tag, digest: m.digest, mediaType: m.mediaType, at: Date.now() })), 'tag')
    }
    return m
  }

  /** GET a manifest from the upstream, verify its digest, store it. */
  private async fetch (route: Route, reference: string, accept: readonly string[] | undefined, expected: Digest | undefined): Promise<Manifest> {
    const res = await route.upstream.request({ method: 'GET', repo: route.repo, path: `manifests/${reference}`, headers: accept === undefined ? {} : acceptHeader(accept), kind: 'manifest' })
    if (res.status !== 200) throw await route.upstream.errorFrom(res, 'manifest', reference)
    const declared = Number(res.headers['content-length'])
    if (declared > MAX_MANIFEST_BYTES) {
      res.body.destroy()
      throw new ManifestInvalid(`upstream manifest is larger than ${MAX_MANIFEST_BYTES} bytes`)
    }
    let body: Buffer
    try {
      body = await readBody(res, MAX_MANIFEST_BYTES)
    } catch (err) {
      throw err instanceof OciError ? err : route.upstream.networkError(err)
    }
    const headerDigest = res.headers['docker-content-digest']
    const digest = expected ?? (typeof headerDigest === 'string' ? safeDigest(headerDigest) : undefined) ?? sha256(body)
    const actual = createHash(digest.algorithm).update(body).digest('hex')
    if (actual !== digest.hex) {
      this.metrics.fillFailures.inc({ reason: 'digest_mismatch' })
      this.log.warn({ upstream: route.upstream.name, repo: route.repo, reference, expected: digest.value, actual: `${digest.algorithm}:${actual}` }, 'upstream manifest digest mismatch; not cached')
      throw new ManifestInvalid(`upstream manifest does not match its digest ${digest.value}`)
    }
    const parsed = parseManifest(body)
    // Content-Type as the upstream stored it; the document's own mediaType when the upstream sent none
    const header = contentType(res.headers['content-type'])
    const type = header !== undefined && header !== 'application/octet-stream' && header !== 'text/plain' ? header : parsed.mediaType
    if (type === undefined) throw new ManifestInvalid('upstream manifest has no media type')
    // memory has it from here on; the disk copy need not delay the client
    this.memory.set(digest.value, { mediaType: type, body })
    this.background(this.save(digest, type, body).then(() => this.record({ kind: 'manifest', name: canonicalName(route), digest: digest.value, mediaType: type, at: Date.now() })), 'manifest')
    return { digest: digest.value, mediaType: type, body }
  }

  /** Tell the region's stream (for replication); a failure to record costs no client anything. */
  private async record (event: RegionEvent): Promise<void> {
    await this.state.appendEvent(event).catch((err: unknown) => {
      this.log.warn({ err: (err as Error).message, kind: event.kind }, 'not recorded in the region stream')
    })
  }

  /** For another region asking peer-to-peer: only what is cached here, whatever its age; never the upstream. */
  async cachedOnly (route: Route, reference: { tag: string } | { digest: Digest }, accept: readonly string[]): Promise<Manifest> {
    let digest: string | undefined
    if ('digest' in reference) digest = reference.digest.value
    else digest = pick(await this.state.getTag({ upstream: route.upstream.name, repo: route.repo, tag: reference.tag }), accept)?.digest
    const local = digest === undefined ? undefined : await this.local(digest)
    if (local === undefined) throw new ManifestUnknown('digest' in reference ? reference.digest.value : reference.tag)
    return local
  }

  /** The manifest is cached here (memory, or its bytes and type in the store and state). */
  async has (digest: string): Promise<boolean> {
    return this.memory.has(digest) || await this.local(digest) !== undefined
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
    this.memory.set(digest.value, { mediaType: type, body })
    await this.save(digest, type, body)
    if ('tag' in reference) {
      const key: TagKey = { upstream: route.upstream.name, repo: route.repo, tag: reference.tag }
      await this.putEntry(key, { accept: [ANY_ACCEPT], digest: digest.value, mediaType: type, size: body.length, fetchedAt: Date.now() })
    }
    return { digest: digest.value, mediaType: type, body }
  }

  private background (work: Promise<void>, what: string): void {
    work.catch((err: unknown) => { this.log.error({ err: (err as Error).message, what }, 'could not save to the cache') })
  }

  private async save (digest: Digest, mediaType: string, body: Buffer): Promise<void> {
    // content-addressed: writing the same bytes again is harmless, and cheaper than asking first
    const tmp = join(this.staging, `m-${digest.hex.slice(0, 16)}-${randomBytes(6).toString('hex')}`)
    await writeFile(tmp, body)
    await this.store.commitFile(digest, tmp)
    // the media type is written after the bytes: a reader that sees it finds the bytes
    await this.state.putManifestType(digest.value, mediaType)
  }

  private async local (digest: string): Promise<Manifest | undefined> {
    const mem = this.memory.get(digest)
    if (mem !== undefined) return { digest, mediaType: mem.mediaType, body: mem.body }
    const mediaType = await this.state.getManifestType(digest)
    if (mediaType === undefined) return undefined
    const blob = await this.store.open(parseDigest(digest))
    if (blob === undefined) return undefined
    const body = await collect(blob.body(), MAX_MANIFEST_BYTES)
    this.memory.set(digest, { mediaType, body })
    return { digest, mediaType, body }
  }

  private putEntry (key: TagKey, entry: TagEntry): Promise<void> {
    return this.updateTag(key, entries => [entry, ...entries.filter(e => !sameSet(e.accept, entry.accept))].slice(0, MAX_ENTRIES_PER_TAG))
  }

  private dropEntry (key: TagKey, accept: readonly string[]): Promise<void> {
    return this.updateTag(key, entries => entries.filter(e => !sameSet(e.accept, accept)))
  }

  /** Read-modify-write of one tag's entries, one at a time per tag, so concurrent Accept sets do not lose each other. */
  private updateTag (key: TagKey, change: (entries: readonly TagEntry[]) => readonly TagEntry[]): Promise<void> {
    const id = `${key.upstream}|${key.repo}|${key.tag}`
    const next = (this.tagUpdates.get(id) ?? Promise.resolve())
      .then(async () => { await this.state.putTag(key, change(await this.state.getTag(key))) })
    const tail = next.catch(() => {})
    this.tagUpdates.set(id, tail)
    void tail.then(() => { if (this.tagUpdates.get(id) === tail) this.tagUpdates.delete(id) })
    return next
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

/**
 * The Accept set of a pushed tag: a registry that was pushed one manifest
 * answers any client that accepts its type with it, whatever else it accepts.
 */
export const ANY_ACCEPT = '*'

export function pick (entries: readonly TagEntry[], accept: readonly string[]): TagEntry | undefined {
  const exact = entries.find(e => sameSet(e.accept, accept))
  if (exact !== undefined && (accept.length === 0 || accepts(accept, exact.mediaType))) return exact
  const pushed = entries.find(e => e.accept[0] === ANY_ACCEPT && (accept.length === 0 || accepts(accept, e.mediaType)))
  if (pushed !== undefined) return pushed
  if (accept.length === 0) return undefined
  return entries.find(e => accepts(accept, e.mediaType) && isSubset(accept, e.accept))
}

function acceptHeader (accept: readonly string[]): Record<string, string> {
  return { accept: accept.join(', ') }
}

function contentType (header: string | string[] | undefined): string | undefined {
  const v = Array.isArray(header) ? header[0] : header
  if (v === undefined) return undefined
  const t = v.split(';', 1)[0]!.trim()
  return t.length > 0 ? t : undefined
}

function safeDigest (text: string): Digest | undefined {
  try { return parseDigest(text) } catch { return undefined }
}

function sha256 (body: Buffer): Digest {
  const hex = createHash('sha256').update(body).digest('hex')
  return { algorithm: 'sha256', hex, value: `sha256:${hex}` }
}

async function readBody (res: UpstreamResponse, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length
    if (size > limit) {
      res.body.destroy()
      throw new ManifestInvalid(`upstream manifest is larger than ${limit} bytes`)
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

