// Region state shared by every proxy of a region, in Redis. Each proxy also
// keeps what it last read or wrote in memory: while Redis is down, tags and
// manifest types are answered from there (the tag layer sees old fetch times
// and revalidates, or serves stale-if-error), writes are kept locally and
// the proxy goes on serving. Replication bookkeeping (the event stream, each
// peer's cursor, dead letters) lives only in Redis: the replicator waits for it.
import { LRUCache } from 'lru-cache'
import type { Redis } from 'ioredis'
import type { Logger } from '../observe/logger.ts'
import { StateError } from './state-errors.ts'
import type { DeadLetter, ListAnswer, RegionEvent, RegionState, RobotRecord, StoredEvent, TagEntry, TagKey } from './region-state.ts'

/** Tags and lists not refreshed for this long leave Redis by themselves. */
const STATE_TTL_SECONDS = 30 * 24 * 3600
/** Events kept in the region's stream for the replicator (trimmed approximately past this). */
const EVENT_STREAM_MAX = 1_000_000

export class RedisState implements RegionState {
  private readonly redis: Redis
  private readonly prefix: string
  private readonly log: Logger
  private readonly tags = new LRUCache<string, readonly TagEntry[]>({ max: 100_000 })
  private readonly manifestTypes = new LRUCache<string, string>({ max: 200_000 })
  private readonly lists = new LRUCache<string, ListAnswer>({ max: 10_000 })

  constructor (redis: Redis, prefix: string, log: Logger) {
    this.redis = redis
    this.prefix = prefix
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

  async appendEvent (event: RegionEvent): Promise<void> {
    await this.write(() => this.redis.xadd(`${this.prefix}events`, 'MAXLEN', '~', EVENT_STREAM_MAX, '*', 'e', JSON.stringify(event)))
  }

  async readEvents (after: string, count: number): Promise<StoredEvent[]> {
    const rows = await this.call('read the event stream', () => this.redis.xrange(`${this.prefix}events`, `(${after === '0' ? '0-0' : after}`, '+', 'COUNT', count))
    const out: StoredEvent[] = []
    for (const [id, fields] of rows) {
      const i = fields.indexOf('e')
      const event = i >= 0 ? parse<RegionEvent>(fields[i + 1] ?? null) : undefined
      if (event !== undefined) out.push({ id, event })
    }
    return out
  }

  async countEventsAfter (after: string): Promise<number> {
    // XRANGE with a bound start is O(log n + returned); count in pages to keep replies small
    let n = 0
    let from = after
    for (;;) {
      const rows = await this.call('read the event stream', () => this.redis.xrange(`${this.prefix}events`, `(${from === '0' ? '0-0' : from}`, '+', 'COUNT', 10_000))
      n += rows.length
      if (rows.length < 10_000) return n
      from = rows[rows.length - 1]![0]
    }
  }

  async getCursor (peer: string): Promise<string> {
    return await this.call('read a replication cursor', () => this.redis.get(`${this.prefix}replication:${peer}:cursor`)) ?? '0'
  }

  async setCursor (peer: string, id: string): Promise<void> {
    await this.call('write a replication cursor', () => this.redis.set(`${this.prefix}replication:${peer}:cursor`, id))
  }

  async addDeadLetter (peer: string, letter: DeadLetter): Promise<void> {
    await this.call('keep a dead letter', () => this.redis.hset(`${this.prefix}replication:${peer}:dead`, letter.id, JSON.stringify(letter)))
  }

  async deadLetters (peer: string): Promise<DeadLetter[]> {
    const all = await this.call('read the dead letters', () => this.redis.hvals(`${this.prefix}replication:${peer}:dead`))
    return all.map(v => parse<DeadLetter>(v)).filter((d): d is DeadLetter => d !== undefined)
  }

  async removeDeadLetter (peer: string, id: string): Promise<void> {
    await this.call('remove a dead letter', () => this.redis.hdel(`${this.prefix}replication:${peer}:dead`, id))
  }

  async robots (): Promise<RobotRecord[]> {
    return parse<RobotRecord[]>(await this.call('read the robots', () => this.redis.get(`${this.prefix}robots`))) ?? []
  }

  async putRobots (robots: readonly RobotRecord[]): Promise<void> {
    await this.call('write the robots', () => this.redis.set(`${this.prefix}robots`, JSON.stringify(robots)))
  }

  async close (): Promise<void> {}

  /** What has no remembered answer: Redis's failure is the caller's, as a StateError. */
  private async call<T> (operation: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op()
    } catch (err) {
      throw new StateError(operation, err)
    }
  }

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
