// Webhook events that could not be delivered, kept for an operator: a JSON
// line each in <data>/state/webhook-dead-letters.jsonl on one machine
// (rotated to .1 past 16 MiB, so a receiver down under a flood of pulls
// cannot fill the cache's disk), a Redis list (the newest 10,000) in a
// region.
import { appendFile, link, mkdir, readFile, rename, stat, unlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Redis } from 'ioredis'
import type { RegionConfig } from '../config/region-config.ts'
import type { DeadLetters, WebhookDeadLetter } from './webhooks.ts'

const KEEP = 10_000
const STALE_CLAIM_MS = 60_000

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
    const size = (await stat(this.file).catch(() => undefined))?.size ?? 0
    if (size > this.maxBytes) await this.rotate()
  }

  /**
   * Several adds (of this process and of other workers) can find the file past
   * its size at once. Renaming it from each would move the fresh file a later
   * append starts over the .1 just rotated, so one rotates: the one whose hard
   * link claims the file as `.rotating`. An append racing the rotation lands
   * whole in the old inode (which becomes .1) or in a new file.
   */
  private async rotate (): Promise<void> {
    const claim = `${this.file}.rotating`
    try {
      await link(this.file, claim)
    } catch (err) {
      // EEXIST: another add rotates, which takes a moment; a claim that grew to twice the size, or that nothing
      // touched for a minute, was left by a process that died mid-way: finish its rotation
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EEXIST') {
        const claimed = await stat(claim).catch(() => undefined)
        if (claimed !== undefined && (claimed.size > 2 * this.maxBytes || Date.now() - claimed.ctimeMs > STALE_CLAIM_MS)) await this.finishStale(claim)
      } else if (code !== 'ENOENT') {
        // a file system without hard links (EPERM, ENOTSUP): rotate by renaming, bounded still, though two
        // adds at once may then drop a .1
        await rename(this.file, `${this.file}.1`).catch(() => {})
      }
      return
    }
    // the file this add linked may already be the new one, after another's rotation
    if ((await stat(claim)).size <= this.maxBytes) { await unlink(claim).catch(() => {}); return }
    await unlink(this.file).catch(() => {})
    await rename(claim, `${this.file}.1`)
  }

  private async finishStale (claim: string): Promise<void> {
    const rotated = `${this.file}.1`
    try { await rename(claim, rotated) } catch { return } // another add finished it
    const [old, current] = await Promise.all([stat(rotated).catch(() => undefined), stat(this.file).catch(() => undefined)])
    if (old !== undefined && current !== undefined && old.ino === current.ino) await unlink(this.file).catch(() => {})
  }

  async list (): Promise<WebhookDeadLetter[]> {
    const out: WebhookDeadLetter[] = []
    for (const path of [`${this.file}.1`, `${this.file}.rotating`, this.file]) {
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
