// Writing a repository: blobs uploaded or mounted into it, manifests put by
// tag or digest, deletes. A manifest is accepted only once every blob and
// child manifest it names is in the repository (so a tag never points at
// missing bytes), and its links are written again when it is: a garbage
// collection that looked before the push sees them as new, and keeps them.
// What a repository gains is recorded in the region's stream, for the
// replicator, unless it came from another region (replication is one hop).
import { createHash } from 'node:crypto'
import type { Readable } from 'node:stream'
import type { BlobCache } from '../blobs/cache.ts'
import { StoreError } from '../store/errors.ts'
import type { ManifestStore } from '../cache/manifest-store.ts'
import { ANY_ACCEPT } from '../cache/tag-entries.ts'
import { BlobUnknown, DigestInvalid, ManifestBlobUnknown, ManifestUnknown } from '../oci/errors.ts'
import { validateManifest } from '../oci/manifest.ts'
import { ALL_MANIFEST_TYPES } from '../oci/media-types.ts'
import { parseDigest, type Digest, type Reference } from '../oci/reference.ts'
import type { Logger } from '../observe/logger.ts'
import type { RegionEvent, RegionState } from '../state/region-state.ts'
import { uploadPastRoom, type Quotas } from './quotas.ts'
import type { Target } from './target.ts'
import { UploadTooLarge, type UploadSessions } from './uploads.ts'

export interface Pushed {
  readonly digest: string
  /** The manifest it refers to (OCI 1.1), for the OCI-Subject header. */
  readonly subject: string | undefined
}

export class Writes {
  private readonly state: RegionState
  private readonly manifests: ManifestStore
  private readonly blobs: BlobCache
  private readonly uploads: UploadSessions
  private readonly quotas: Quotas
  private readonly log: Logger

  constructor (opts: { state: RegionState, manifests: ManifestStore, blobs: BlobCache, uploads: UploadSessions, quotas: Quotas, log: Logger }) {
    this.state = opts.state
    this.manifests = opts.manifests
    this.blobs = opts.blobs
    this.uploads = opts.uploads
    this.quotas = opts.quotas
    this.log = opts.log
  }

  get sessions (): UploadSessions { return this.uploads }

  /** Mount `digest` from repository `from` into `target`: true when `from` holds it (the caller checked the pusher may read `from`). */
  async mount (target: Target, digest: Digest, from: string): Promise<boolean> {
    if (await this.state.links.linked(from, 'blob', digest.value) === undefined) return false
    if (!await this.blobs.has(digest)) return false
    await this.quotas.admit(target, [{ digest }])
    await this.state.links.link(target.name, 'blob', digest.value)
    return true
  }

  /** Bytes of an upload (PATCH, or the body of its last PUT); an upload past its namespace's room is dropped, DENIED. */
  async appendUpload (target: Target, session: string, start: number | undefined, body: Readable): Promise<number> {
    const room = await this.quotas.room(target)
    try {
      return await this.uploads.append(session, start, body, undefined, room)
    } catch (err) {
      if (err instanceof StoreError && err.code === 'STORE_FULL') {
        this.blobs.diskFull('upload', 0)
        this.log.error({ write: 'upload', err: err.message }, 'the disk is full: write refused, the client told 507; evicting cached blobs to make room')
      }
      if (!(err instanceof UploadTooLarge) || target.kind !== 'hosted') throw err
      body.resume()
      throw uploadPastRoom(target.namespace.prefix, target.namespace.quota ?? 0, room)
    }
  }

  /** The upload's bytes are complete: verified against `digest`, they become the blob, and the repository holds it. */
  async completeUpload (target: Target, session: string, digest: Digest, rest: Readable | undefined): Promise<void> {
    await this.uploads.check(session, target.name)
    if (rest !== undefined) await this.appendUpload(target, session, undefined, rest)
    await this.quotas.admit(target, [{ digest, size: await this.uploads.offset(session) }])
    await this.uploads.finish(session, digest, (path, size) => this.blobs.adopt(digest, path, size))
    await this.state.links.link(target.name, 'blob', digest.value)
  }

  /**
   * A manifest pushed to `target`. `replica`: from another region's
   * replicator, whose index may name platforms this region does not hold
   * (a pull-through cache holds the platforms its clients pulled).
   */
  async putManifest (target: Target, reference: Reference, contentType: string | undefined, body: Buffer, replica: boolean): Promise<Pushed> {
    const digest = reference.kind === 'digest' ? reference.digest : sha256(body)
    const actual = createHash(digest.algorithm).update(body).digest('hex')
    if (actual !== digest.hex) throw new DigestInvalid(digest.value, `the manifest hashes to ${digest.algorithm}:${actual}`)
    const m = validateManifest(body, contentType)
    const repo = target.name
    const blobs = [...(m.config !== undefined ? [m.config] : []), ...m.layers]
    for (const d of blobs) {
      if (await this.state.links.linked(repo, 'blob', d.digest) === undefined) throw new ManifestBlobUnknown(d.digest)
      // the link may be remembered from before a collection took the bytes
      if (!replica && !await this.blobs.has(parseDigest(d.digest))) throw new ManifestBlobUnknown(d.digest)
    }
    const children = m.manifests.filter(c => ALL_MANIFEST_TYPES.includes(c.mediaType))
    for (const c of children) {
      const held = await this.state.links.linked(repo, 'manifest', c.digest) !== undefined
      if (!held && !replica) throw new ManifestBlobUnknown(c.digest)
    }
    await this.quotas.admit(target, [], body.length)
    const artifactType = m.artifactType ?? (m.config !== undefined && m.config.mediaType !== 'application/vnd.oci.empty.v1+json' && m.subject !== undefined ? m.config.mediaType : undefined)
    await this.manifests.save(digest, m.mediaType, body, { subject: m.subject?.digest, artifactType, annotations: m.annotations })
    // links written again (now): a collection that looked before this push keeps what it names
    for (const d of blobs) await this.state.links.link(repo, 'blob', d.digest)
    for (const c of children) if (replica || await this.state.links.linked(repo, 'manifest', c.digest) !== undefined) await this.state.links.link(repo, 'manifest', c.digest)
    await this.state.links.link(repo, 'manifest', digest.value)
    if (m.subject !== undefined) await this.state.links.addReferrer(repo, m.subject.digest, digest.value)
    if (reference.kind === 'tag') {
      await this.state.tags.put(repo, reference.tag, { accept: [ANY_ACCEPT], digest: digest.value, mediaType: m.mediaType, size: body.length, fetchedAt: Date.now() }, target.kind === 'hosted')
    }
    if (!replica) {
      await this.record({ kind: 'manifest', name: repo, digest: digest.value, mediaType: m.mediaType, at: Date.now() })
      if (reference.kind === 'tag') await this.record({ kind: 'tag', name: repo, tag: reference.tag, digest: digest.value, mediaType: m.mediaType, at: Date.now() })
    }
    return { digest: digest.value, subject: m.subject?.digest }
  }

  /** Delete a tag, or a manifest by digest (with every tag that points at it). */
  async deleteManifest (target: Target, reference: Reference, replica: boolean): Promise<void> {
    const repo = target.name
    if (reference.kind === 'tag') {
      if (!await this.state.tags.remove(repo, reference.tag)) throw new ManifestUnknown(reference.tag)
      if (!replica) await this.record({ kind: 'tag-deleted', name: repo, tag: reference.tag, at: Date.now() })
      return
    }
    const digest = reference.digest.value
    if (!await this.state.links.unlink(repo, 'manifest', digest)) throw new ManifestUnknown(digest)
    for (const tag of await this.state.tags.list(repo)) {
      if ((await this.state.tags.get(repo, tag)).some(e => e.digest === digest)) await this.state.tags.remove(repo, tag)
    }
    const record = await this.state.manifests.get(digest)
    if (record?.subject !== undefined) await this.state.links.removeReferrer(repo, record.subject, digest)
    if (!replica) await this.record({ kind: 'manifest-deleted', name: repo, digest, at: Date.now() })
  }

  /** The repository no longer holds the blob (the bytes go when nothing holds them: garbage collection). */
  async deleteBlob (target: Target, digest: Digest): Promise<void> {
    if (!await this.state.links.unlink(target.name, 'blob', digest.value)) throw new BlobUnknown(digest.value)
  }

  private async record (event: RegionEvent): Promise<void> {
    await this.state.events.append(event).catch((err: unknown) => {
      this.log.warn({ err: (err as Error).message, kind: event.kind }, 'not recorded in the region stream')
    })
  }
}

function sha256 (body: Buffer): Digest {
  return parseDigest(`sha256:${createHash('sha256').update(body).digest('hex')}`)
}
