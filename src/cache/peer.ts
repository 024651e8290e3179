// Reading a fill that another proxy of the region leads. The leader serves
// its growing staging file at /_ferry/v1/fills/<digest> exactly as it serves
// its own clients (all but the last byte until the digest verifies); the
// follower streams that into its own fill, hashing it again, so a peer can
// no more poison a cache than an upstream can.
import { Agent, request } from 'undici'
import type { FillSource } from './fill.ts'

export const PEER_PATH = '/_ferry/v1/fills/'

export class PeerClient {
  private readonly agent = new Agent({ connectTimeout: 2000, headersTimeout: 30_000, bodyTimeout: 30_000, connections: 64 })

  /**
   * The fill of `digest` from `offset`, or 'gone' when the peer no longer
   * has it (ended: look in the store). Rejects when the peer is unreachable.
   */
  async fetch (peer: string, digest: string, offset: number): Promise<FillSource | 'gone'> {
    const res = await request(`${peer}${PEER_PATH}${digest}`, {
      dispatcher: this.agent,
      headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
    })
    if (res.statusCode === 404 || res.statusCode === 416) {
      res.body.resume()
      return 'gone'
    }
    if (res.statusCode === 200 && offset === 0) {
      return { size: declared(res.headers['x-ferry-blob-size']), body: res.body, skip: 0 }
    }
    if (res.statusCode === 206) {
      const m = /^bytes (\d+)-(?:\d+|\*)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''))
      if (m !== null && Number(m[1]) === offset) return { size: m[2] === '*' ? undefined : Number(m[2]), body: res.body, skip: 0 }
    }
    res.body.destroy()
    throw new Error(`peer answered ${res.statusCode}`)
  }

  async close (): Promise<void> { await this.agent.close() }
}

function declared (v: string | string[] | undefined): number | undefined {
  const n = Number(v)
  return v !== undefined && v !== '' && Number.isSafeInteger(n) && n >= 0 ? n : undefined
}
