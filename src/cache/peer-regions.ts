// Peer fallback: before going to the upstream for a blob or a manifest by
// digest, ask the other regions (in the configured order, each with a short
// timeout) for it. The request is marked peer-to-peer, so a peer answers only
// from what it holds, never from its upstream or a further peer: no loops.
// Whatever a peer sends is verified against the digest like any fill.
import { readFileSync } from 'node:fs'
import { Agent, request, type Dispatcher } from 'undici'
import { credentialsHeader } from '../auth/credentials.ts'
import type { PeerConfig } from '../config/schema.ts'
import type { Logger } from '../observe/logger.ts'
import type { FillSource } from './fill.ts'

/** Marks a request from another region: answer from what you hold, never from your upstream or a further peer. */
export const PEER_ONLY_HEADER = 'x-ferry-peer-only'

export class PeerRegions {
  private readonly peers: { config: PeerConfig, agent: Agent }[]
  private readonly log: Logger

  constructor (peers: readonly PeerConfig[], timeoutMs: number, log: Logger) {
    this.log = log
    this.peers = peers.map(config => {
      const ca = config.caFile !== undefined ? readFileSync(config.caFile) : undefined
      return {
        config,
        // the timeout bounds the wait for an answer; a transfer that started may take as long as it needs
        agent: new Agent({ connectTimeout: timeoutMs, headersTimeout: timeoutMs, bodyTimeout: 30_000, connect: { ...(ca !== undefined ? { ca } : {}), rejectUnauthorized: !config.insecure } }),
      }
    })
  }

  private headers (p: PeerConfig, extra: Record<string, string>): Record<string, string> {
    return { [PEER_ONLY_HEADER]: '1', 'user-agent': 'ferry', ...credentialsHeader(p.credentials), ...extra }
  }

  private async ask (path: string, extra: Record<string, string>, ok: (res: Dispatcher.ResponseData) => boolean): Promise<{ peer: string, res: Dispatcher.ResponseData } | undefined> {
    for (const p of this.peers) {
      try {
        const res = await request(`${p.config.url.origin}${path}`, { dispatcher: p.agent, headers: this.headers(p.config, extra) })
        if (ok(res)) return { peer: p.config.name, res }
        await res.body.dump()
      } catch (err) {
        this.log.debug({ peer: p.config.name, path, err: (err as Error).message }, 'peer region did not answer')
      }
    }
    return undefined
  }

  /** The blob from `offset`, from the first peer region that holds it. */
  async blob (name: string, digest: string, offset: number): Promise<(FillSource & { peer: string }) | undefined> {
    const got = await this.ask(`/v2/${name}/blobs/${digest}`, offset > 0 ? { range: `bytes=${offset}-` } : {},
      res => offset > 0 ? res.statusCode === 206 && String(res.headers['content-range'] ?? '').startsWith(`bytes ${offset}-`) : res.statusCode === 200)
    if (got === undefined) return undefined
    const total = offset > 0 ? Number(/\/(\d+)$/.exec(String(got.res.headers['content-range']))?.[1]) : Number(got.res.headers['content-length'])
    return { size: Number.isSafeInteger(total) ? total : undefined, body: got.res.body, skip: 0, peer: got.peer }
  }

  /** The manifest's bytes and media type, from the first peer region that holds it (the caller verifies the digest). */
  async manifest (name: string, digest: string, accept: string): Promise<{ body: Buffer, mediaType: string | undefined, peer: string } | undefined> {
    const got = await this.ask(`/v2/${name}/manifests/${digest}`, { accept }, res => res.statusCode === 200)
    if (got === undefined) return undefined
    const chunks: Buffer[] = []
    let size = 0
    for await (const c of got.res.body) {
      size += (c as Buffer).length
      if (size > 4 * 1024 * 1024) { got.res.body.destroy(); return undefined }
      chunks.push(c as Buffer)
    }
    const type = got.res.headers['content-type']
    return { body: Buffer.concat(chunks), mediaType: typeof type === 'string' ? type.split(';', 1)[0]!.trim() : undefined, peer: got.peer }
  }

  async close (): Promise<void> { await Promise.all(this.peers.map(p => p.agent.close())) }
}
