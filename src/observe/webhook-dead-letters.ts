// Webhook events that could not be delivered, kept for an operator: a JSON
// line each in <data>/state/webhook-dead-letters.jsonl on one machine
// (rotated to .1 past 16 MiB, so a receiver down under a flood of pulls
// cannot fill the cache's disk), a Redis list (the newest 10,000) in a
// region.
import { appendFile, mkdir, readFile, rename, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Redis } from 'ioredis'
import type { RegionConfig } from '../config/region-config.ts'
import type { DeadLetters, WebhookDeadLetter } from './webhooks.ts'

const KEEP = 10_000

export class FileDeadLetters implements DeadLetters {
  private readonly file: string
  private readonly maxBytes: number
  /** `maxBytes`: past it the file becomes `<file>.1` (the one before is dropped). */
  constructor (file: string, maxBytes = 16 * 1024 * 1024) {
    this.file = file
    this.maxBytes = maxBytes
  }

  async add (letter: WebhookDeadLetter): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true })
    // one appendFile per line: whole lines, also from several workers
    await appendFile(this.file, JSON.stringify(letter) + '\n')
    // an append racing another worker's rotation lands whole in one file or the other; the stat may then find none
    const size = (await stat(this.file).catch(() => undefined))?.size ?? 0
    if (size > this.maxBytes) await rename(this.file, `${this.file}.1`).catch(() => {})
  }

  async list (): Promise<WebhookDeadLetter[]> {
    const out: WebhookDeadLetter[] = []
    for (const path of [`${this.file}.1`, this.file]) {
      let text: string
      try { text = await readFile(path, 'utf8') } catch { continue }
      for (const line of text.split('\n')) {
        if (line === '') continue
        try { out.push(JSON.parse(line) as WebhookDeadLetter) } catch { /* a torn last line */ }
      }
    }
    return out.slice(-KEEP)
  }
}

export class RedisDeadLetters implements DeadLetters {
  private readonly redis: Redis
  private readonly key: string
  constructor (redis: Redis, prefix: string) { this.redis = redis; this.key = `${prefix}webhooks:dead-letters` }

  async add (letter: WebhookDeadLetter): Promise<void> {
    await this.redis.multi().lpush(this.key, JSON.stringify(letter)).ltrim(this.key, 0, KEEP - 1).exec()
  }

  async list (): Promise<WebhookDeadLetter[]> {
    return (await this.redis.lrange(this.key, 0, -1)).reverse().map(l => JSON.parse(l) as WebhookDeadLetter)
  }
}

/** The region's dead letters: in its Redis when it has one, else in the data folder. */
export function deadLettersOf (config: RegionConfig, redis: Redis | undefined): DeadLetters {
  return redis !== undefined && config.state.type === 'redis'
    ? new RedisDeadLetters(redis, config.state.keyPrefix)
    : new FileDeadLetters(join(config.data, 'state', 'webhook-dead-letters.jsonl'))
}
