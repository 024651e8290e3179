// The other regions, asked before the upstream for a blob (from an offset,
// when a fill resumes) or a manifest by digest, in the configured order,
// each within a short timeout. The request is marked peer-only, so a peer
// answers from what it holds, never from its upstream or a further peer: no
// loops. Whatever a peer sends is verified against the digest like any fill.
import { PEER_ONLY_HEADER } from '../common/ferry-protocol.ts'
import type { PeerConfig } from '../config/region-config.ts'
import { BodyTooLarge, readBounded } from '../io/read-bounded.ts'
import { MAX_MANIFEST_BYTES } from '../oci/manifest.ts'
import { parseContentRange } from '../oci/range.ts'
import type { Logger } from '../observe/logger.ts'
import { RegistryClient, type RegistryResponse } from '../registry-client/client.ts'
import { createDispatcher } from '../registry-client/dispatcher.ts'
import { basicAuth, NO_AUTH } from '../registry-client/token-auth.ts'
import { contentType, declaredSize } from './upstream.ts'

export interface PeerRegionBlob {
  /** The peer region that had it. */
  readonly peer: string
  readonly size: number | undefined
  readonly start: number
  readonly response: RegistryResponse
}

export class PeerRegions {
  private readonly clients: RegistryClient[]
  private readonly log: Logger

  constructor (peers: readonly PeerConfig[], timeoutMs: number, log: Logger) {
    this.log = log
    this.clients = peers.map(p => new RegistryClient({
      name: p.name,
      origin: p.url.origin,
      // the timeout bounds the wait for an answer; a transfer that started may take as long as it needs
      dispatcher: createDispatcher({ caFile: p.caFile, insecure: p.insecure, connectTimeoutMs: timeoutMs, headersTimeoutMs: timeoutMs, bodyTimeoutMs: 30_000 }),
      auth: p.credentials === undefined ? NO_AUTH : basicAuth(p.credentials.username, () => process.env[p.credentials!.passwordEnv] ?? ''),
      headers: { [PEER_ONLY_HEADER]: '1' },
    }))
  }

  /** The first answer `ok` accepts, from the peers in order; a peer that fails or refuses is skipped. */
  private async ask (path: string, headers: Record<string, string>, resource: 'blob' | 'manifest', ok: (res: RegistryResponse) => boolean): Promise<{ peer: string, res: RegistryResponse } | undefined> {
    for (const client of this.clients) {
      try {
        const res = await client.request({ method: 'GET', path, headers, resource })
        if (ok(res)) return { peer: client.name, res }
        await res.body.dump()
      } catch (err) {
        this.log.debug({ peer: client.name, path, err: (err as Error).message }, 'peer region did not answer')
      }
    }
    return undefined
  }

  /** The blob from `offset`, from the first peer region that holds it. */
  async blob (name: string, digest: string, offset: number): Promise<PeerRegionBlob | undefined> {
    const got = await this.ask(`/v2/${name}/blobs/${digest}`, offset > 0 ? { range: `bytes=${offset}-` } : {}, 'blob',
      res => offset > 0 ? res.status === 206 && parseContentRange(res.headers['content-range'])?.start === offset : res.status === 200)
    if (got === undefined) return undefined
    const size = offset > 0 ? parseContentRange(got.res.headers['content-range'])?.size : declaredSize(got.res.headers['content-length'])
    return { peer: got.peer, size, start: offset, response: got.res }
  }

  /** The manifest's bytes and media type, from the first peer region that holds it (the caller verifies the digest). */
  async manifest (name: string, digest: string, accept: string): Promise<{ body: Buffer, mediaType: string | undefined, peer: string } | undefined> {
    const got = await this.ask(`/v2/${name}/manifests/${digest}`, { accept }, 'manifest', res => res.status === 200)
    if (got === undefined) return undefined
    let body: Buffer
    try {
      body = await readBounded(got.res.body, MAX_MANIFEST_BYTES)
    } catch (err) {
      if (!(err instanceof BodyTooLarge)) this.log.debug({ peer: got.peer, digest, err: (err as Error).message }, 'peer region manifest transfer broke')
      return undefined
    }
    return { body, mediaType: contentType(got.res.headers['content-type']), peer: got.peer }
  }

  async close (): Promise<void> { await Promise.all(this.clients.map(c => c.close())) }
}
