// The last good list answers in Redis: list:<repository>?<key>, expiring when
// not refreshed; this proxy's memory answers while Redis is down.
import type { ListAnswer, ListAnswers } from '../region-state.ts'
import { FAILED, parse, RedisPart, STATE_TTL_SECONDS } from './base.ts'
import { boundedCache } from '../../common/bounded-cache.ts'

export class RedisLists extends RedisPart implements ListAnswers {
  private readonly memory = boundedCache<string, ListAnswer>(10_000)

  private key (repo: string, key: string): string { return `${this.prefix}list:${repo}?${key}` }

  async get (repo: string, key: string): Promise<ListAnswer | undefined> {
    const k = this.key(repo, key)
    const text = await this.tryRead(() => this.redis.get(k))
    if (text === FAILED) return this.memory.get(k)
    return parse<ListAnswer>(text)
  }

  async put (repo: string, key: string, answer: ListAnswer): Promise<void> {
    const k = this.key(repo, key)
    this.memory.set(k, answer)
    await this.tryWrite(() => this.redis.set(k, JSON.stringify(answer), 'EX', STATE_TTL_SECONDS))
  }
}
