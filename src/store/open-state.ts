// The region state named by the region file: embedded files, or Redis
// (ioredis loaded only then).
import { join } from 'node:path'
import type { RegionConfig } from '../config/region-config.ts'
import type { Logger } from '../observe/logger.ts'
import { EmbeddedState } from './embedded-state.ts'
import type { RegionState } from './region-state.ts'

export interface OpenedState {
  readonly state: RegionState
  /** The Redis connection, for the parts of a region that need it directly (leases, the index). */
  readonly redis: import('ioredis').Redis | undefined
  close (): Promise<void>
}

export async function openState (config: RegionConfig, log: Logger): Promise<OpenedState> {
  if (config.state.type !== 'redis') {
    const state = new EmbeddedState(join(config.data, 'state'))
    return { state, redis: undefined, close: () => state.close() }
  }
  const { connectRedis } = await import('./redis.ts')
  const { RedisState } = await import('./redis-state.ts')
  const redis = connectRedis(config.state, log)
  const state = new RedisState(redis, config.state.keyPrefix, log)
  return { state, redis, close: async () => { await state.close(); redis.disconnect() } }
}
