// Region state shared by every proxy of a region, in Redis. Each proxy also
// keeps what it last read or wrote in memory: while Redis is down, tags and
// manifest types are answered from there (the tag layer sees old fetch times
// and revalidates, or serves stale-if-error), writes are kept locally and
// the proxy goes on serving.
import { LRUCache } from 'lru-cache'
import type { Redis } from 'ioredis'
import type { Logger } from '../observe/logger.ts'
import type { CommittedBlob, ListAnswer, RegionState, TagEntry, TagKey } from './region-state.ts'

/** Tags and lists not refreshed for this long leave Redis by themselves. */
const STATE_TTL_SECONDS = 30 * 24 * 3600
/** Newly committed blobs kept in the region's stream for the replicator. */
const COMMITTED_STREAM_MAX = 1_000_000

export class RedisState implements RegionState {
  private readonly redis: Redis
  private readonly prefix: string
  private readonly log: Logger
  private readonly region: string
  private readonly tags = new LRUCache<string, readonly TagEntry[]>({ max: 100_000 })
  private readonly manifestTypes = new LRUCache<string, string>({ max: 200_000 })
  private readonly lists = new LRUCache<string, ListAnswer>({ max: 10_000 })

  constructor (redis: Redis, prefix: string, region: string, log: Logger) {
    this.redis = redis
    this.prefix = prefix
    this.region = region
    this.log = log
  }

  private tagKey (k: TagKey): string { return `${this.prefix}tag:${k.upstream}/${k.repo}:${k.tag}` }
  private listKey (upstream: string, repo: string, key: string): string { return `${this.prefix}list:${upstream}/${repo}?${key}` }

  async getTag (key: TagKey): Promise<readonly TagEntry[]> {
    const k = this.tagKey(key)
    const text = await this.read(k)
    if (text === FAILED) return this.tags.get(k) ?? []
    const entries = parse<TagEntry[]>(text) ?? []
    this.tags.set(k, entries)
    return entries
  }

  async putTag (key: TagKey, entries: readonly TagEntry[]): Promise<void> {
    const k = this.tagKey(key)
    this.tags.set(k, entries)
    await this.write(() => this.redis.set(k, JSON.stringify(entries), 'EX', STATE_TTL_SECONDS))
  }

  async getManifestType (digest: string): Promise<string | undefined> {
    const hit = this.manifestTypes.get(digest)
    if (hit !== undefined) return hit // a digest's media type never changes
    const text = await this.read(`${this.prefix}mt:${digest}`)
    if (text === FAILED || text === null) return undefined
    this.manifestTypes.set(digest, text)
    return text
  }

  async putManifestType (digest: string, mediaType: string): Promise<void> {
    this.manifestTypes.set(digest, mediaType)
    await this.write(() => this.redis.set(`${this.prefix}mt:${digest}`, mediaType))
  }

  async getList (upstream: string, repo: string, key: string): Promise<ListAnswer | undefined> {
    const k = this.listKey(upstream, repo, key)
    const text = await this.read(k)
    if (text === FAILED) return this.lists.get(k)
    return parse<ListAnswer>(text)
  }

  async putList (upstream: string, repo: string, key: string, answer: ListAnswer): Promise<void> {
    const k = this.listKey(upstream, repo, key)
    this.lists.set(k, answer)
    await this.write(() => this.redis.set(k, JSON.stringify(answer), 'EX', STATE_TTL_SECONDS))
  }

  async appendCommitted (blob: CommittedBlob): Promise<void> {
    await this.write(() => this.redis.xadd(`${this.prefix}committed`, 'MAXLEN', '~', COMMITTED_STREAM_MAX, '*',
      'digest', blob.digest, 'size', String(blob.size), 'region', this.region, 'at', String(blob.at)))
  }

  async readCommitted (after: string, count: number): Promise<{ id: string, blob: CommittedBlob }[]> {
    const rows = await this.redis.xrange(`${this.prefix}committed`, `(${after}`, '+', 'COUNT', count)
    return rows.map(([id, fields]) => {
      const f: Record<string, string> = {}
      for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!
      return { id, blob: { digest: f.digest ?? '', size: Number(f.size), at: Number(f.at) } }
    })
  }

  async close (): Promise<void> {}

  private async read (key: string): Promise<string | null | typeof FAILED> {
    try {
      return await this.redis.get(key)
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'redis read failed; answering from this proxy\'s memory')
      return FAILED
    }
  }

  private async write (op: () => Promise<unknown>): Promise<void> {
    try {
      await op()
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'redis write failed; kept in this proxy\'s memory only')
    }
  }
}

const FAILED = Symbol('failed')

function parse<T> (text: string | null): T | undefined {
  if (text === null) return undefined
  try { return JSON.parse(text) as T } catch { return undefined }
}
