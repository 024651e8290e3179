// Manifest records in Redis: mr:<digest>, a JSON record (mt:<digest>, a bare
// media type, from before sizes were kept, is read too).
import type { ManifestRecord, Manifests } from '../region-state.ts'
import { FAILED, parse, RedisPart } from './base.ts'
import { boundedCache } from '../../common/bounded-cache.ts'

export class RedisManifests extends RedisPart implements Manifests {
  private readonly memory = boundedCache<string, ManifestRecord>(200_000)

  async get (digest: string): Promise<ManifestRecord | undefined> {
    const hit = this.memory.get(digest)
    if (hit !== undefined) return hit // a digest's record never changes
    const got = await this.tryRead(() => this.redis.mget(`${this.prefix}mr:${digest}`, `${this.prefix}mt:${digest}`))
    if (got === FAILED) return undefined
    const [record, legacy] = got
    const found = parse<ManifestRecord>(record) ?? (legacy !== null && legacy !== undefined ? { mediaType: legacy, size: 0 } : undefined)
    if (found !== undefined) this.memory.set(digest, found)
    return found
  }

  async put (digest: string, record: ManifestRecord): Promise<void> {
    this.memory.set(digest, record)
    await this.call('write a manifest record', () => this.redis.set(`${this.prefix}mr:${digest}`, JSON.stringify(record)))
  }

  async remove (digest: string): Promise<void> {
    this.memory.delete(digest)
    await this.call('remove a manifest record', () => this.redis.del(`${this.prefix}mr:${digest}`, `${this.prefix}mt:${digest}`))
  }
}
