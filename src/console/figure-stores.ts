// Where the console's figures live: what the proxies served (traffic), how
// often each tag was pulled (usage), and which proxies are alive. One
// machine: a JSON file per process in <data>/state/console/, rewritten
// whole, summed by the reader. A region with Redis: counters in Redis that
// every proxy adds to, so any proxy's console shows the whole region.
import type { Redis } from 'ioredis'
import type { LRUCache } from 'lru-cache'
import { boundedCache } from '../common/bounded-cache.ts'
import { KeptFiles } from './kept-files.ts'
import { add, BUCKET_MS, COUNTS, KEEP_MS, zero, type Bucket, type Counts } from './traffic.ts'
import type { Pulls } from './usage.ts'

export interface TrafficStore {
  open (): Promise<void>
  /** Counts to add, per bucket. */
  add (buckets: readonly Bucket[]): Promise<void>
  /** Every bucket from `from` (ms since epoch) on. */
  since (from: number): Promise<Bucket[]>
}

export interface UsageStore {
  open (): Promise<void>
  /** Pulls to add, by `repo\nreference`: counts add up, the latest time wins. */
  add (pulls: ReadonlyMap<string, Pulls>): Promise<void>
  read (repo: string, references: readonly string[]): Promise<Map<string, Pulls>>
}

export interface ProxyRoll {
  /** This proxy is alive (called every few seconds). */
  beat (): Promise<void>
  /** The proxies seen in the last 30 s, with when. */
  seen (): Promise<{ proxy: string, seenAt: number }[]>
}

/** Pull counts kept per process (the most recently pulled). */
const KEEP_PULLS = 100_000
const SEEN_MS = 30_000

// ---- one machine: files ----------------------------------------------------------

export class FileTrafficStore implements TrafficStore {
  private readonly files: KeptFiles
  private own: Bucket[] = []

  constructor (dir: string, processId: string) { this.files = new KeptFiles(dir, 'console-traffic', processId) }

  async open (): Promise<void> { this.own = buckets(await this.files.readOwn()) }

  async add (more: readonly Bucket[]): Promise<void> {
    for (const b of more) {
      let mine = this.own.find(x => x.t === b.t)
      if (mine === undefined) { mine = { t: b.t, by: {} }; this.own.push(mine) }
      for (const [u, c] of Object.entries(b.by)) add(mine.by[u] ??= zero(), c)
    }
    const oldest = Date.now() - KEEP_MS - BUCKET_MS
    this.own = this.own.filter(b => b.t >= oldest).sort((a, b) => a.t - b.t)
    await this.files.write(this.own)
  }

  async since (from: number): Promise<Bucket[]> {
    return (await this.files.readAll()).flatMap(buckets).filter(b => b.t + BUCKET_MS > from)
  }
}

export class FileUsageStore implements UsageStore {
  private readonly files: KeptFiles
  private readonly own: LRUCache<string, Pulls> = boundedCache(KEEP_PULLS)

  constructor (dir: string, processId: string) { this.files = new KeptFiles(dir, 'console-usage', processId) }

  async open (): Promise<void> {
    for (const [k, v] of pullsIn(await this.files.readOwn())) this.own.set(k, v)
  }

  async add (pulls: ReadonlyMap<string, Pulls>): Promise<void> {
    for (const [k, v] of pulls) {
      const had = this.own.get(k)
      this.own.set(k, had === undefined ? { ...v } : { count: had.count + v.count, last: Math.max(had.last, v.last) })
    }
    await this.files.write([...this.own.entries()])
  }

  async read (repo: string, references: readonly string[]): Promise<Map<string, Pulls>> {
    const wanted = new Set(references.map(r => `${repo}\n${r}`))
    const out = new Map<string, Pulls>()
    for (const kept of await this.files.readAll()) {
      for (const [k, v] of pullsIn(kept)) {
        if (!wanted.has(k)) continue
        const ref = k.slice(repo.length + 1)
        const had = out.get(ref)
        out.set(ref, had === undefined ? { ...v } : { count: had.count + v.count, last: Math.max(had.last, v.last) })
      }
    }
    return out
  }
}

/** One machine: this process is the proxy (workers share its port and count as one). */
export class LocalRoll implements ProxyRoll {
  private readonly self: () => string
  constructor (self: () => string) { this.self = self }
  async beat (): Promise<void> {}
  async seen (): Promise<{ proxy: string, seenAt: number }[]> { return [{ proxy: this.self(), seenAt: Date.now() }] }
}

function buckets (parsed: unknown): Bucket[] {
  if (!Array.isArray(parsed)) return []
  return parsed.filter((b): b is Bucket => typeof b === 'object' && b !== null && typeof (b as Bucket).t === 'number' && typeof (b as Bucket).by === 'object')
}

function pullsIn (parsed: unknown): [string, Pulls][] {
  if (!Array.isArray(parsed)) return []
  return parsed.filter((e): e is [string, Pulls] => Array.isArray(e) && typeof e[0] === 'string' && typeof e[1]?.count === 'number' && typeof e[1]?.last === 'number')
}

// ---- a region: Redis ---------------------------------------------------------------
// <prefix>console:traffic:<bucket start>  hash  "<upstream>\n<count name>" -> n   (expires after 8 days)
// <prefix>console:pulls:<repo>           hash  "<reference>\ncount" -> n, "<reference>\nlast" -> ms
// <prefix>console:proxies                zset  advertised address -> last beat (ms)

const TRAFFIC_TTL_S = 8 * 24 * 3600
const PULLS_TTL_S = 30 * 24 * 3600

/** Adds a count and keeps the later of two times, in one step (two proxies may add at once). */
const ADD_PULL = `
redis.call('HINCRBY', KEYS[1], ARGV[1] .. '\\ncount', ARGV[2])
local last = tonumber(redis.call('HGET', KEYS[1], ARGV[1] .. '\\nlast') or '0')
if tonumber(ARGV[3]) > last then redis.call('HSET', KEYS[1], ARGV[1] .. '\\nlast', ARGV[3]) end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1`

export class RedisTrafficStore implements TrafficStore {
  private readonly redis: Redis
  private readonly prefix: string

  constructor (redis: Redis, prefix: string) { this.redis = redis; this.prefix = `${prefix}console:traffic:` }

  async open (): Promise<void> {}

  async add (more: readonly Bucket[]): Promise<void> {
    const p = this.redis.pipeline()
    for (const b of more) {
      const key = `${this.prefix}${b.t}`
      for (const [u, c] of Object.entries(b.by)) for (const k of COUNTS) if (c[k] !== 0) p.hincrby(key, `${u}\n${k}`, c[k])
      p.expire(key, TRAFFIC_TTL_S)
    }
    const results = await p.exec()
    const failed = results?.find(([err]) => err !== null)
    if (failed !== undefined) throw failed[0]!
  }

  async since (from: number): Promise<Bucket[]> {
    const first = Math.floor(from / BUCKET_MS) * BUCKET_MS
    const times: number[] = []
    for (let t = first; t <= Date.now(); t += BUCKET_MS) times.push(t)
    const p = this.redis.pipeline()
    for (const t of times) p.hgetall(`${this.prefix}${t}`)
    const results = (await p.exec()) ?? []
    const out: Bucket[] = []
    results.forEach(([err, fields], i) => {
      if (err !== null || fields === null || typeof fields !== 'object') return
      const by: Record<string, Counts> = {}
      for (const [field, value] of Object.entries(fields as Record<string, string>)) {
        const cut = field.lastIndexOf('\n')
        const name = field.slice(cut + 1) as keyof Counts
        if (cut < 0 || !COUNTS.includes(name)) continue
        ;(by[field.slice(0, cut)] ??= zero())[name] += Number(value)
      }
      if (Object.keys(by).length > 0) out.push({ t: times[i]!, by })
    })
    return out
  }
}

export class RedisUsageStore implements UsageStore {
  private readonly redis: Redis
  private readonly prefix: string

  constructor (redis: Redis, prefix: string) { this.redis = redis; this.prefix = `${prefix}console:pulls:` }

  async open (): Promise<void> {}

  async add (pulls: ReadonlyMap<string, Pulls>): Promise<void> {
    const p = this.redis.pipeline()
    for (const [k, v] of pulls) {
      const cut = k.indexOf('\n')
      p.eval(ADD_PULL, 1, `${this.prefix}${k.slice(0, cut)}`, k.slice(cut + 1), v.count, v.last, PULLS_TTL_S)
    }
    const results = await p.exec()
    const failed = results?.find(([err]) => err !== null)
    if (failed !== undefined) throw failed[0]!
  }

  async read (repo: string, references: readonly string[]): Promise<Map<string, Pulls>> {
    const fields = await this.redis.hgetall(`${this.prefix}${repo}`)
    const out = new Map<string, Pulls>()
    for (const ref of references) {
      const count = Number(fields[`${ref}\ncount`] ?? 0)
      if (count > 0) out.set(ref, { count, last: Number(fields[`${ref}\nlast`] ?? 0) })
    }
    return out
  }
}

export class RedisRoll implements ProxyRoll {
  private readonly redis: Redis
  private readonly key: string
  private readonly self: () => string

  constructor (redis: Redis, prefix: string, self: () => string) { this.redis = redis; this.key = `${prefix}console:proxies`; this.self = self }

  async beat (): Promise<void> {
    const now = Date.now()
    await this.redis.pipeline().zadd(this.key, now, this.self()).zremrangebyscore(this.key, '-inf', now - 24 * 3600_000).exec()
  }

  async seen (): Promise<{ proxy: string, seenAt: number }[]> {
    const flat = await this.redis.zrangebyscore(this.key, Date.now() - SEEN_MS, '+inf', 'WITHSCORES')
    const out: { proxy: string, seenAt: number }[] = []
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ proxy: flat[i]!, seenAt: Number(flat[i + 1]) })
    return out
  }
}
