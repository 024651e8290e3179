// A client of a peer registry's push API (a ferry region or any OCI
// registry): HEAD to skip what the peer has, cross-repository mount, chunked
// blob uploads that resume from the offset the peer reports, manifest PUTs.
import { readFileSync } from 'node:fs'
import type { Readable } from 'node:stream'
import { Agent, request, type Dispatcher } from 'undici'
import { credentialsHeader } from '../auth/credentials.ts'
import { PEER_ONLY_HEADER } from '../cache/peer-regions.ts'
import type { PeerConfig } from '../config/schema.ts'

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
  private readonly agent: Agent
  private readonly origin: string

  constructor (peer: PeerConfig) {
    this.peer = peer
    this.origin = peer.url.origin
    const ca = peer.caFile !== undefined ? readFileSync(peer.caFile) : undefined
    this.agent = new Agent({
      connectTimeout: 5000, headersTimeout: 60_000, bodyTimeout: 60_000, connections: 16,
      connect: { ...(ca !== undefined ? { ca } : {}), rejectUnauthorized: !peer.insecure },
    })
  }

  private async send (method: Dispatcher.HttpMethod, path: string, headers: Record<string, string> = {}, body?: Readable | Buffer): Promise<Dispatcher.ResponseData> {
    const url = path.startsWith('http://') || path.startsWith('https://') ? path : `${this.origin}${path}`
    try {
      // a ferry peer then answers HEADs from what it holds, never from its upstream; other registries ignore it
      return await request(url, { method, dispatcher: this.agent, headers: { 'user-agent': 'ferry-replicator', [PEER_ONLY_HEADER]: '1', ...credentialsHeader(this.peer.credentials), ...headers }, ...(body !== undefined ? { body } : {}) })
    } catch (err) {
      throw new PushError(`${this.peer.name} unreachable: ${(err as Error).message}`, true)
    }
  }

  private async fail (res: Dispatcher.ResponseData, what: string): Promise<never> {
    const text = (await res.body.text().catch(() => '')).slice(0, 300)
    const retryable = res.statusCode >= 500 || res.statusCode === 429 || res.statusCode === 408
    throw new PushError(`${this.peer.name}: ${what}: ${res.statusCode} ${text}`, retryable, res.statusCode)
  }

  async hasBlob (name: string, digest: string): Promise<boolean> {
    const res = await this.send('HEAD', `/v2/${name}/blobs/${digest}`)
    if (res.statusCode !== 200 && res.statusCode !== 404) return await this.fail(res, `HEAD blob ${digest}`)
    await res.body.dump()
    return res.statusCode === 200
  }

  async hasManifest (name: string, reference: string): Promise<string | undefined> {
    const res = await this.send('HEAD', `/v2/${name}/manifests/${reference}`, { accept: '*/*' })
    if (res.statusCode !== 200 && res.statusCode !== 404) return await this.fail(res, `HEAD manifest ${reference}`)
    await res.body.dump()
    return res.statusCode === 200 ? String(res.headers['docker-content-digest'] ?? '') : undefined
  }

  /** Ask the peer to mount `digest` from `from`; true when it did. */
  async mount (name: string, digest: string, from: string): Promise<boolean> {
    const res = await this.send('POST', `/v2/${name}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`)
    if (res.statusCode !== 201 && res.statusCode !== 202) return await this.fail(res, `mount ${digest}`)
    await res.body.dump()
    if (res.statusCode === 201) return true
    if (res.statusCode === 202) {
      // an upload was opened instead: close it, the caller uploads afresh
      const location = res.headers.location
      if (typeof location === 'string') await this.send('DELETE', this.absolute(location)).then(r => r.body.dump(), () => {})
      return false
    }
    return await this.fail(res, `mount ${digest}`)
  }

  private absolute (location: string): string {
    return new URL(location, this.origin).toString()
  }

  async startUpload (name: string): Promise<string> {
    const res = await this.send('POST', `/v2/${name}/blobs/uploads/`)
    const location = res.headers.location
    if (res.statusCode !== 202 || typeof location !== 'string') return await this.fail(res, 'start upload')
    await res.body.dump()
    return this.absolute(location)
  }

  /** The offset the peer holds for an upload, or undefined if it no longer knows it. */
  async uploadOffset (location: string): Promise<number | undefined> {
    const res = await this.send('GET', location)
    if (res.statusCode !== 204 && res.statusCode !== 200 && res.statusCode !== 404) return await this.fail(res, 'upload status')
    await res.body.dump()
    if (res.statusCode === 404) return undefined
    const m = /^(?:bytes=)?0-(\d+)$/.exec(String(res.headers.range ?? ''))
    if (m === null) return 0
    // "0-0" is what registries say for an empty upload too; a 1-byte upload is the same answer
    return Number(m[1]) === 0 ? 0 : Number(m[1]) + 1
  }

  /**
   * Upload bytes [offset, size) of a blob in chunks, at `location`, then
   * complete it. `read(start, end)` streams the inclusive range from the
   * local store. Resolves with the location, which changes per chunk.
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
      if (res.statusCode !== 202) return await this.fail(res, `upload ${digest} at ${at}`)
      await res.body.dump()
      if (typeof res.headers.location === 'string') loc = this.absolute(res.headers.location)
      at = end + 1
      await onProgress(loc, at)
    }
    const sep = loc.includes('?') ? '&' : '?'
    const res = await this.send('PUT', `${loc}${sep}digest=${encodeURIComponent(digest)}`, { 'content-length': '0' })
    if (res.statusCode !== 201) return await this.fail(res, `complete upload ${digest}`)
    await res.body.dump()
  }

  async putManifest (name: string, reference: string, mediaType: string, body: Buffer): Promise<void> {
    const res = await this.send('PUT', `/v2/${name}/manifests/${reference}`, { 'content-type': mediaType }, body)
    if (res.statusCode !== 201 && res.statusCode !== 200) return await this.fail(res, `PUT manifest ${reference}`)
    await res.body.dump()
  }

  async close (): Promise<void> { await this.agent.close() }
}
