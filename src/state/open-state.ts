// The region state named by the region file: embedded files, or Redis
// (ioredis loaded only then).
import { constants } from 'node:fs'
import { access } from 'node:fs/promises'
import { join } from 'node:path'
import type { RegionConfig } from '../config/region-config.ts'
import type { Logger } from '../observe/logger.ts'
import { embeddedState } from './embedded/index.ts'
import { StateError } from './errors.ts'
import type { RegionState } from './region-state.ts'

export interface OpenedState {
  readonly state: RegionState
  /** The Redis connection, for the parts of a region that need it directly (leases, the index). */
  readonly redis: import('ioredis').Redis | undefined
  /** Resolves when the state answers now (for /readyz). */
  ping (): Promise<void>
  close (): Promise<void>
}

export interface OpenStateOptions {
  /** Wait this long for Redis to be ready before anything is asked of it; past it, a StateError. */
  readonly readyWithinMs?: number
}

export async function openState (config: RegionConfig, log: Logger, opts: OpenStateOptions = {}): Promise<OpenedState> {
  if (config.state.type !== 'redis') {
    const folder = join(config.data, 'state')
    const state = embeddedState(folder, config.workers > 1)
    return { state, redis: undefined, ping: async () => { await access(folder, constants.W_OK) }, close: () => state.close() }
  }
  const { connectRedis, redactedUrl } = await import('./redis/connect.ts')
  const { whenReady } = await import('./redis/ready.ts')
  const { redisState } = await import('./redis/index.ts')
  const redis = connectRedis(config.state, log)
  if (opts.readyWithinMs !== undefined) {
    try {
      await whenReady(redis, opts.readyWithinMs)
    } catch (err) {
      redis.disconnect()
      throw new StateError(`reach Redis at ${redactedUrl(config.state.url)} within ${opts.readyWithinMs / 1000} s`, err)
    }
  }
  const state = redisState(redis, config.state.keyPrefix, log)
  return { state, redis, ping: async () => { await redis.ping() }, close: async () => { await state.close(); redis.disconnect() } }
}
