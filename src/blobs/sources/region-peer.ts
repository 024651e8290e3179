// A fill another proxy of the region leads, as a source. The leader serves
// its growing staging file at REGION_PEER_PATH<digest> exactly as it serves
// its own clients (all but the last byte until the digest verifies); the
// follower streams that into a fill of its own, hashing it again, so a proxy
// can no more poison another's cache than an upstream can.
import { arrivingBody } from '../../io/body.ts'
import { BLOB_OFFSET_HEADER, BLOB_SIZE_HEADER, REGION_PEER_PATH } from '../../common/ferry-protocol.ts'
import { RegistryClient } from '../../registry-client/client.ts'
import { createDispatcher } from '../../registry-client/dispatcher.ts'
import { RegistryError } from '../../registry-client/errors.ts'
import { declaredSize } from '../../upstream/upstream.ts'
import type { RegionSecret } from '../region-secret.ts'
import type { BlobSource, BlobWant, OpenedBlob } from '../source.ts'

/** The region's other proxies, each reached at the URL its lease names. */
export class RegionPeers {
  private readonly dispatcher = createDispatcher({ connectTimeoutMs: 2000, headersTimeoutMs: 30_000, bodyTimeoutMs: 30_000, connections: 64 })
  private readonly clients = new Map<string, RegionPeerSource>()
  private readonly secret: RegionSecret

  constructor (secret: RegionSecret) { this.secret = secret }

  /** The proxy at `url` as a source (its fills in flight). */
  at (url: string): RegionPeerSource {
    let source = this.clients.get(url)
    if (source === undefined) {
      source = new RegionPeerSource(new RegistryClient({ name: `proxy ${url}`, origin: url, dispatcher: this.dispatcher }), this.secret)
      if (this.clients.size >= 256) this.clients.clear()
      this.clients.set(url, source)
    }
    return source
  }

  async close (): Promise<void> { await this.dispatcher.close() }
}

export class RegionPeerSource implements BlobSource {
  readonly name = 'region-peer'
  private readonly client: RegistryClient
  private readonly secret: RegionSecret

  constructor (client: RegistryClient, secret: RegionSecret) {
    this.client = client
    this.secret = secret
  }

  /** The fill from the offset wanted; undefined when that proxy no longer has it (ended: look in the store). Throws when it is unreachable. */
  async open (want: BlobWant): Promise<OpenedBlob | undefined> {
    const offset = want.range?.kind === 'from' ? want.range.start : 0
    const secret = await this.secret.get()
    if (secret === undefined) throw new RegistryError('REGISTRY_UNREACHABLE', 'the region\'s secret is not known yet (Redis has not answered)', { registry: this.client.name, resource: 'blob' })
    const res = await this.client.request({
      method: 'GET', path: `${REGION_PEER_PATH}${want.digest.value}`, resource: 'blob',
      headers: { authorization: `Bearer ${secret}`, ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) },
    })
    if (res.status === 404 || res.status === 416) {
      res.body.resume()
      return undefined
    }
    const start = Number(res.headers[BLOB_OFFSET_HEADER] ?? 0)
    if ((res.status !== 200 && res.status !== 206) || start !== offset) {
      res.body.destroy()
      throw new RegistryError('REGISTRY_BAD_ANSWER', `the proxy leading this fill answered ${res.status} from offset ${start}`, { registry: this.client.name, resource: 'blob', status: res.status })
    }
    const size = declaredSize(res.headers[BLOB_SIZE_HEADER])
    return { size, start, length: size === undefined ? undefined : size - start, body: arrivingBody(res.body) }
  }
}
