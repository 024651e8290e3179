// Links in Redis: a hash per repository and kind (digest -> when), a set of
// the repositories that hold anything, and a set per (repository, subject)
// of its referrers. Positive answers are remembered for a short while, so a
// hot blob costs no round trip; a delete elsewhere is seen within that while.
// While Redis is down, what this proxy last knew answers.
import type { Link, LinkKind, Links } from '../region-state.ts'
import { StateError } from '../errors.ts'
import { RedisPart } from './base.ts'
import { boundedCache } from '../../common/bounded-cache.ts'

const REMEMBER_MS = 30_000
// KEYS: the repository's links. ARGV: digest, before. Atomic: a push that linked it again meanwhile keeps it.
const UNLINK_IF_OLDER = `local at = redis.call('hget', KEYS[1], ARGV[1])
if at and tonumber(at) < tonumber(ARGV[2]) then return redis.call('hdel', KEYS[1], ARGV[1]) end
return 0`
const KIND: Record<LinkKind, string> = { blob: 'b', manifest: 'm' }

export class RedisLinks extends RedisPart implements Links {
  private readonly known = boundedCache<string, number>(50_000, { ttl: REMEMBER_MS, allowStale: true, noDeleteOnStaleGet: true })

  private key (repo: string, kind: LinkKind): string { return `${this.prefix}links:${repo}:${KIND[kind]}` }
  private get repos (): string { return `${this.prefix}repositories` }
  private refKey (repo: string, subject: string): string { return `${this.prefix}referrers:${repo}:${subject}` }

  async linked (repo: string, kind: LinkKind, digest: string): Promise<number | undefined> {
    const memo = `${repo}\n${kind}\n${digest}`
    if (this.known.has(memo)) return this.known.get(memo)
    let at: string | null
    try {
      at = await this.redis.hget(this.key(repo, kind), digest)
    } catch (err) {
      const stale = this.known.get(memo, { allowStale: true })
      if (stale !== undefined) return stale
      throw new StateError('read a link', err)
    }
    if (at === null) { this.known.delete(memo); return undefined }
    this.known.set(memo, Number(at))
    return Number(at)
  }

  async link (repo: string, kind: LinkKind, digest: string): Promise<void> {
    const at = Date.now()
    await this.call('write a link', async () => {
      await this.redis.hset(this.key(repo, kind), digest, String(at))
      await this.redis.sadd(this.repos, repo)
    })
    this.known.set(`${repo}\n${kind}\n${digest}`, at)
  }

  async unlink (repo: string, kind: LinkKind, digest: string): Promise<boolean> {
    this.known.delete(`${repo}\n${kind}\n${digest}`)
    return await this.call('remove a link', () => this.redis.hdel(this.key(repo, kind), digest)) > 0
  }

  async unlinkIfOlder (repo: string, kind: LinkKind, digest: string, before: number): Promise<boolean> {
    this.known.delete(`${repo}\n${kind}\n${digest}`)
    const removed = await this.call('remove a link', () => this.redis.eval(UNLINK_IF_OLDER, 1, this.key(repo, kind), digest, String(before)))
    return removed === 1
  }

  async list (repo: string, kind: LinkKind): Promise<Link[]> {
    const all = await this.call('list links', () => this.redis.hgetall(this.key(repo, kind)))
    return Object.entries(all).map(([digest, at]) => ({ digest, at: Number(at) }))
  }

  async repositories (): Promise<string[]> {
    return (await this.call('list repositories', () => this.redis.smembers(this.repos))).sort()
  }

  async addReferrer (repo: string, subject: string, digest: string): Promise<void> {
    await this.call('write a referrer', () => this.redis.sadd(this.refKey(repo, subject), digest))
  }

  async removeReferrer (repo: string, subject: string, digest: string): Promise<void> {
    await this.call('remove a referrer', () => this.redis.srem(this.refKey(repo, subject), digest))
  }

  async referrers (repo: string, subject: string): Promise<string[]> {
    return (await this.call('read referrers', () => this.redis.smembers(this.refKey(repo, subject)))).sort()
  }
}
