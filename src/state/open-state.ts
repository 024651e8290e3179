// The region state named by the region file: embedded files, or Redis
// (ioredis loaded only then).
import { constants } from 'node:fs'
import { access } from 'node:fs/promises'
import { join } from 'node:path'
import type { RegionConfig } from '../config/region-config.ts'
import type { Logger } from '../observe/logger.ts'
import { embeddedState } from './embedded/index.ts'
import type { RegionState } from './region-state.ts'

export interface OpenedState {
  readonly state: RegionState
  /** The Redis connection, for the parts of a region that need it directly (leases, the index). */
  readonly redis: import('ioredis').Redis | undefined
  /** Resolves when the state answers now (for /readyz). */
  ping (): Promise<void>
  close (): Promise<void>
}

export async function openState (config: RegionConfig, log: Logger): Promise<OpenedState> {
  if (config.state.type !== 'redis') {
    const folder = join(config.data, 'state')
    const state = embeddedState(folder, config.workers > 1)
    return { state, redis: undefined, ping: async () => { await access(folder, constants.W_OK) }, close: () => state.close() }
  }
  const { connectRedis } = await import('./redis/connect.ts')
  const { redisState } = await import('./redis/index.ts')
  const redis = connectRedis(config.state, log)
  const state = redisState(redis, config.state.keyPrefix, log)
  return { state, redis, ping: async () => { await redis.ping() }, close: async () => { await state.close(); redis.disconnect() } }
}
