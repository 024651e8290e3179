// Tags in Redis: one hash per tag, a field per Accept set, so two proxies
// writing one tag (for two Accept sets) never drop each other's entry; a Lua
// script adds an entry and keeps the eight newest atomically. A set per
// repository lists its tags. Reads fall back to this proxy's memory while
// Redis is down.
import type { TagEntry, Tags } from '../region-state.ts'
import { acceptKey, MAX_ENTRIES_PER_TAG } from '../tag-order.ts'
import { FAILED, parse, RedisPart, STATE_TTL_SECONDS } from './base.ts'
import { boundedCache } from '../../common/bounded-cache.ts'

// KEYS: the tag's hash, the repository's tag set. ARGV: field, entry, max entries, ttl (0: kept), tag name
const PUT = `redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
local fields = redis.call('hgetall', KEYS[1])
local n = #fields / 2
if n > tonumber(ARGV[3]) then
  local entries = {}
  for i = 1, #fields, 2 do
    local ok, e = pcall(cjson.decode, fields[i + 1])
    table.insert(entries, { field = fields[i], at = (ok and e.fetchedAt) or 0 })
  end
  table.sort(entries, function (a, b) return a.at > b.at end)
  for i = tonumber(ARGV[3]) + 1, #entries do redis.call('hdel', KEYS[1], entries[i].field) end
end
redis.call('sadd', KEYS[2], ARGV[5])
if tonumber(ARGV[4]) > 0 then
  redis.call('expire', KEYS[1], ARGV[4])
  redis.call('expire', KEYS[2], ARGV[4])
else
  redis.call('persist', KEYS[1])
  redis.call('persist', KEYS[2])
end
return 1`
// KEYS: the tag's hash, the repository's tag set. ARGV: field, tag name
const DROP = `redis.call('hdel', KEYS[1], ARGV[1])
if redis.call('hlen', KEYS[1]) == 0 then redis.call('srem', KEYS[2], ARGV[2]) end
return 1`

export class RedisTags extends RedisPart implements Tags {
  private readonly memory = boundedCache<string, readonly TagEntry[]>(100_000)

  private key (repo: string, tag: string): string { return `${this.prefix}tag:${repo}:${tag}` }
  private setKey (repo: string): string { return `${this.prefix}tags:${repo}` }

  async get (repo: string, tag: string): Promise<readonly TagEntry[]> {
    const k = this.key(repo, tag)
    const fields = await this.tryRead(() => this.redis.hvals(k))
    if (fields === FAILED) return this.memory.get(k) ?? []
    const entries = fields.map(f => parse<TagEntry>(f)).filter((e): e is TagEntry => e !== undefined).sort((a, b) => b.fetchedAt - a.fetchedAt)
    this.memory.set(k, entries)
    return entries
  }

  async put (repo: string, tag: string, entry: TagEntry, kept = false): Promise<void> {
    const k = this.key(repo, tag)
    const remembered = this.memory.get(k) ?? []
    this.memory.set(k, [entry, ...remembered.filter(e => acceptKey(e.accept) !== acceptKey(entry.accept))].slice(0, MAX_ENTRIES_PER_TAG))
    const write = (): Promise<unknown> => this.redis.eval(PUT, 2, k, this.setKey(repo), acceptKey(entry.accept), JSON.stringify(entry), String(MAX_ENTRIES_PER_TAG), String(kept ? 0 : STATE_TTL_SECONDS), tag)
    // a pushed tag must not be lost quietly; a cached one is the upstream's to tell again
    if (kept) await this.call('write a tag', write)
    else await this.tryWrite(write)
  }

  async drop (repo: string, tag: string, accept: readonly string[]): Promise<void> {
    const k = this.key(repo, tag)
    this.memory.set(k, (this.memory.get(k) ?? []).filter(e => acceptKey(e.accept) !== acceptKey(accept)))
    await this.tryWrite(() => this.redis.eval(DROP, 2, k, this.setKey(repo), acceptKey(accept), tag))
  }

  async remove (repo: string, tag: string): Promise<boolean> {
    const k = this.key(repo, tag)
    this.memory.delete(k)
    return await this.call('remove a tag', async () => {
      const removed = await this.redis.del(k)
      await this.redis.srem(this.setKey(repo), tag)
      return removed > 0
    })
  }

  async list (repo: string): Promise<string[]> {
    return (await this.call('list tags', () => this.redis.smembers(this.setKey(repo)))).sort()
  }
}
