// A client of a peer region's push API (a ferry region or any OCI registry):
// HEAD to skip what the peer has, cross-repository mount, chunked blob
// uploads that resume from the offset the peer reports, manifest PUTs and
// deletes.
import type { Readable } from 'node:stream'
import { PEER_ONLY_HEADER } from '../common/ferry-protocol.ts'
import type { PeerConfig } from '../config/region-config.ts'
import { readText } from '../io/read-bounded.ts'
import { heldByUpload } from '../oci/range.ts'
import { RegistryClient, type RegistryRequest, type RegistryResponse } from '../registry-client/client.ts'
import { createDispatcher } from '../registry-client/dispatcher.ts'
import { RegistryError } from '../registry-client/errors.ts'
import { basicAuth, NO_AUTH } from '../registry-client/token-auth.ts'

/** A failure worth retrying later (peer down, 5xx, 429), or one the peer refuses (4xx). */
export class PushError extends Error {
  readonly retryable: boolean
  readonly status: number | undefined
  constructor (message: string, retryable: boolean, status?: number) {
    super(message)
    this.retryable = retryable
    this.status = status
  }
}

/** Bytes per PATCH: a drop costs at most this much again. */
const CHUNK = 32 * 1024 * 1024

export class PushClient {
  readonly peer: PeerConfig
  private readonly client: RegistryClient

  constructor (peer: PeerConfig) {
    this.peer = peer
    this.client = new RegistryClient({
      name: peer.name,
      origin: peer.url.origin,
      dispatcher: createDispatcher({ caFile: peer.caFile, insecure: peer.insecure, connectTimeoutMs: 5000, headersTimeoutMs: 60_000, bodyTimeoutMs: 60_000, connections: 16 }),
      auth: peer.credentials === undefined ? NO_AUTH : basicAuth(peer.credentials.username, () => process.env[peer.credentials!.passwordEnv] ?? ''),
      // a ferry peer then answers HEADs from what it holds, never from its upstream; other registries ignore it
      headers: { 'user-agent': 'ferry-replicator', [PEER_ONLY_HEADER]: '1' },
    })
  }

  private async send (method: RegistryRequest['method'], path: string, headers: Record<string, string> = {}, body?: Readable | Buffer): Promise<RegistryResponse> {
    try {
      return await this.client.request({ method, path, headers, resource: path.includes('/blobs/uploads/') ? 'upload' : path.includes('/manifests/') ? 'manifest' : 'blob', ...(body !== undefined ? { body } : {}) })
    } catch (err) {
      // an answer ferry will not follow (a Location on another origin) is refused, not retried
      if (err instanceof RegistryError && err.code === 'REGISTRY_BAD_ANSWER') throw new PushError(`${this.peer.name}: ${err.message}`, false)
      throw new PushError(`${this.peer.name} unreachable: ${err instanceof RegistryError && err.cause instanceof Error ? err.cause.message : (err as Error).message}`, true)
    }
  }

  private async fail (res: RegistryResponse, what: string): Promise<never> {
    const text = (await readText(res.body, 300).catch(() => '')).slice(0, 300)
    const retryable = res.status >= 500 || res.status === 429 || res.status === 408
    throw new PushError(`${this.peer.name}: ${what}: ${res.status} ${text}`, retryable, res.status)
  }

  async hasBlob (name: string, digest: string): Promise<boolean> {
    const res = await this.send('HEAD', `/v2/${name}/blobs/${digest}`)
    if (res.status !== 200 && res.status !== 404) return await this.fail(res, `HEAD blob ${digest}`)
    await res.body.dump()
    return res.status === 200
  }

  async hasManifest (name: string, reference: string): Promise<string | undefined> {
    const res = await this.send('HEAD', `/v2/${name}/manifests/${reference}`, { accept: '*/*' })
    if (res.status !== 200 && res.status !== 404) return await this.fail(res, `HEAD manifest ${reference}`)
    await res.body.dump()
    return res.status === 200 ? String(res.headers['docker-content-digest'] ?? '') : undefined
  }

  /** Ask the peer to mount `digest` from `from`; true when it did. */
  async mount (name: string, digest: string, from: string): Promise<boolean> {
    const res = await this.send('POST', `/v2/${name}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`)
    if (res.status !== 201 && res.status !== 202) return await this.fail(res, `mount ${digest}`)
    await res.body.dump()
    if (res.status === 201) return true
    // an upload was opened instead: close it, the caller uploads afresh
    const location = res.headers.location
    if (typeof location === 'string') await this.send('DELETE', this.absolute(location)).then(r => r.body.dump(), () => {})
    return false
  }

  private absolute (location: string): string {
    return new URL(location, this.peer.url.origin).toString()
  }

  async startUpload (name: string): Promise<string> {
    const res = await this.send('POST', `/v2/${name}/blobs/uploads/`)
    const location = res.headers.location
    if (res.status !== 202 || typeof location !== 'string') return await this.fail(res, 'start upload')
    await res.body.dump()
    return this.absolute(location)
  }

  /** The offset the peer holds for an upload, or undefined if it no longer knows it. */
  async uploadOffset (location: string): Promise<number | undefined> {
    const res = await this.send('GET', location)
    if (res.status !== 204 && res.status !== 200 && res.status !== 404) return await this.fail(res, 'upload status')
    await res.body.dump()
    if (res.status === 404) return undefined
    return heldByUpload(res.headers.range)
  }

  /**
   * Upload bytes [offset, size) of a blob in chunks, at `location`, then
   * complete it. `read(start, end)` streams the inclusive range from the
   * local store. `onProgress` is told the location (which may change per
   * chunk) and the offset after each chunk.
   */
  async upload (location: string, digest: string, size: number, offset: number, read: (start: number, end: number) => Readable, onProgress: (location: string, offset: number) => Promise<void>): Promise<void> {
    let at = offset
    let loc = location
    while (at < size) {
      const end = Math.min(size, at + CHUNK) - 1
      const res = await this.send('PATCH', loc, {
        'content-type': 'application/octet-stream',
        'content-range': `${at}-${end}`,
        'content-length': String(end - at + 1),
      }, read(at, end))
      if (res.status !== 202) return await this.fail(res, `upload ${digest} at ${at}`)
      await res.body.dump()
      if (typeof res.headers.location === 'string') loc = this.absolute(res.headers.location)
      at = end + 1
      await onProgress(loc, at)
    }
    const sep = loc.includes('?') ? '&' : '?'
    const res = await this.send('PUT', `${loc}${sep}digest=${encodeURIComponent(digest)}`, { 'content-length': '0' })
    if (res.status !== 201) return await this.fail(res, `complete upload ${digest}`)
    await res.body.dump()
  }

  async putManifest (name: string, reference: string, mediaType: string, body: Buffer): Promise<void> {
    const res = await this.send('PUT', `/v2/${name}/manifests/${reference}`, { 'content-type': mediaType }, body)
    if (res.status !== 201 && res.status !== 200) return await this.fail(res, `PUT manifest ${reference}`)
    await res.body.dump()
  }

  /** Delete a tag or a manifest on the peer; one it does not have is as good as deleted. */
  async deleteManifest (name: string, reference: string): Promise<void> {
    const res = await this.send('DELETE', `/v2/${name}/manifests/${reference}`)
    if (res.status !== 202 && res.status !== 200 && res.status !== 404) return await this.fail(res, `DELETE manifest ${reference}`)
    await res.body.dump()
  }

  async close (): Promise<void> { await this.client.close() }
}
