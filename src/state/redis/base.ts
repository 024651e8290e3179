// What the Redis parts share: one connection, the region's key prefix, and
// two ways to fail. A read that has a remembered answer falls back to it
// while Redis is down (the proxy serves what it last knew); a write that
// only keeps a cache warm is dropped; anything else is a StateError.
import type { Redis } from 'ioredis'
import type { Logger } from '../../observe/logger.ts'
import { StateError } from '../errors.ts'

export const FAILED = Symbol('failed')

export class RedisPart {
  protected readonly redis: Redis
  protected readonly prefix: string
  protected readonly log: Logger

  constructor (redis: Redis, prefix: string, log: Logger) {
    this.redis = redis
    this.prefix = prefix
    this.log = log
  }

  /** What has no remembered answer: Redis's failure is the caller's. */
  protected async call<T> (operation: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op()
    } catch (err) {
      throw new StateError(operation, err)
    }
  }

  /** A read that may fall back to memory. */
  protected async tryRead<T> (op: () => Promise<T>): Promise<T | typeof FAILED> {
    try {
      return await op()
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'redis read failed; answering from this proxy\'s memory')
      return FAILED
    }
  }

  /** A write that only keeps the region's memory warm: lost while Redis is down. */
  protected async tryWrite (op: () => Promise<unknown>): Promise<void> {
    try {
      await op()
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'redis write failed; kept in this proxy\'s memory only')
    }
  }
}

export function parse<T> (text: string | null | undefined): T | undefined {
  if (text === null || text === undefined) return undefined
  try { return JSON.parse(text) as T } catch { return undefined }
}

/** Tags and lists not refreshed for this long leave Redis by themselves (hosted tags never do). */
export const STATE_TTL_SECONDS = 30 * 24 * 3600
